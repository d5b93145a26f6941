// Package matrixhost is the homeserver behind a module's api methods when
// luamods runs beside a Matrix homeserver (Synapse, Dendrite, …) as an
// appservice: a luaapi.Host over the client-server API (the appservice's
// as_token, acting as a local user with ?user_id=) and Synapse's admin API
// (a server admin's token), and the receiver of the appservice transactions
// the homeserver pushes.
//
// It speaks plain net/http and encoding/json rather than a Matrix client
// library (mautrix-go): the Host needs about thirty loosely typed endpoints,
// several of them Synapse's admin API that no client library covers, and
// returns the homeserver's JSON as it is (the module sees the events as the
// homeserver wrote them), so typed client structs would only be converted
// back into maps.
package matrixhost
