// Package storagetest starts the real servers the storage tests run
// against: a PostgreSQL 15 cluster in a temporary folder (as the user
// nobody when the tests run as root, since PostgreSQL refuses root) and a
// redis-server, each on a free loopback port. Tests only: nothing else
// imports it.
//
// The PostgreSQL binaries are found in $LUAMODS_PG_BIN, else
// /usr/lib/postgresql/15/bin (Debian's postgresql package), else another
// version there. When a server
// is missing, a test is skipped with a loud message, or fails when $CI is
// set.
package storagetest
