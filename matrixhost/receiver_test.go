package matrixhost

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingFeed records delivered events.
type recordingFeed struct {
	token  string
	mu     sync.Mutex
	events []string // event ids, in delivery order
	got    chan struct{}
}

func (f *recordingFeed) HSToken() string { return f.token }

func (f *recordingFeed) Deliver(_ context.Context, ev map[string]any) {
	f.mu.Lock()
	f.events = append(f.events, fmt.Sprint(ev["event_id"]))
	f.mu.Unlock()
	f.got <- struct{}{}
}

func (f *recordingFeed) delivered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

func put(t *testing.T, url, auth, body string) int {
	t.Helper()
	req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestReceiver(t *testing.T) {
	feed := &recordingFeed{token: "secret-hs-token", got: make(chan struct{}, 100)}
	r := NewReceiver(ReceiverOptions{Feed: feed, Concurrency: 1})
	defer r.Close(context.Background())
	srv := httptest.NewServer(r)
	defer srv.Close()
	txn := func(ids ...string) string {
		var evs []string
		for _, id := range ids {
			evs = append(evs, fmt.Sprintf(`{"event_id": %q, "type": "m.room.message", "room_id": "!r:x"}`, id))
		}
		return `{"events": [` + strings.Join(evs, ",") + `]}`
	}
	wait := func(n int) {
		for i := 0; i < n; i++ {
			select {
			case <-feed.got:
			case <-time.After(time.Minute):
				t.Fatalf("only %d of %d events delivered", i, n)
			}
		}
	}
	auth := "Bearer secret-hs-token"
	cases := []struct {
		name, method, path, auth, body string
		status                         int
	}{
		{"wrong token", "PUT", "/_matrix/app/v1/transactions/1", "Bearer nope", txn("$x"), 403},
		{"token prefix", "PUT", "/_matrix/app/v1/transactions/1", "Bearer secret", txn("$x"), 403},
		{"no token", "PUT", "/_matrix/app/v1/transactions/1", "", txn("$x"), 401},
		{"not JSON", "PUT", "/_matrix/app/v1/transactions/bad", auth, "{", 400},
		{"user query", "GET", "/_matrix/app/v1/users/@a:x", auth, "", 404},
		{"alias query", "GET", "/_matrix/app/v1/rooms/%23a:x", auth, "", 404},
		{"ping", "POST", "/_matrix/app/v1/ping", auth, "{}", 200},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.status)
		}
	}
	if got := put(t, srv.URL+"/_matrix/app/v1/transactions/t1", auth, txn("$1", "$2", "$3")); got != 200 {
		t.Fatalf("t1: %d", got)
	}
	wait(3)
	// A repeated transaction is acknowledged and not processed again; the
	// legacy path and ?access_token= work.
	if got := put(t, srv.URL+"/_matrix/app/v1/transactions/t1", auth, txn("$1", "$2", "$3")); got != 200 {
		t.Fatalf("t1 again: %d", got)
	}
	if got := put(t, srv.URL+"/transactions/t2?access_token=secret-hs-token", "", txn("$4")); got != 200 {
		t.Fatalf("legacy t2: %d", got)
	}
	wait(1)
	if got := strings.Join(feed.delivered(), ","); got != "$1,$2,$3,$4" {
		t.Fatalf("delivered %s", got)
	}
	// Without a homeserver configured, the API is not there.
	feed.token = ""
	if got := put(t, srv.URL+"/_matrix/app/v1/transactions/t3", auth, txn("$5")); got != 404 {
		t.Fatalf("no homeserver: %d", got)
	}
}

func TestReceiverForgetsOldestIDs(t *testing.T) {
	r := NewReceiver(ReceiverOptions{Feed: &recordingFeed{}, Remember: 2})
	defer r.Close(context.Background())
	for _, id := range []string{"a", "b", "c"} {
		if !r.claim(id) {
			t.Fatalf("%s claimed twice", id)
		}
	}
	if r.claim("c") || r.claim("b") {
		t.Fatal("a remembered id was processed again")
	}
	if !r.claim("a") {
		t.Fatal("the oldest id was not forgotten")
	}
}
