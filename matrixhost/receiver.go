package matrixhost

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
)

// Feed is where the Receiver delivers events.
type Feed interface {
	// HSToken is the hs_token the homeserver must present now; "" when no
	// homeserver is configured (the receiver then answers 404).
	HSToken() string
	// Deliver handles one event; it runs in the background, in feed order
	// with bounded concurrency, and logs its own errors.
	Deliver(ctx context.Context, event map[string]any)
}

// ReceiverOptions configure a Receiver.
type ReceiverOptions struct {
	Feed        Feed
	Logger      *slog.Logger // nil: slog.Default()
	Concurrency int          // events handled at once; default 8
	Queue       int          // events waiting; default 1024 (a full queue makes the homeserver wait)
	MaxBody     int64        // transaction size limit; default 32 MiB
	Remember    int          // transaction ids remembered for deduplication; default 10000
}

// Receiver answers the appservice API the homeserver pushes to: PUT
// /_matrix/app/v1/transactions/{txnId} (and the legacy /transactions/{txnId}),
// user and room-alias queries (404: luamods makes no users or rooms on
// demand) and ping. A transaction is acknowledged once its events are
// queued; a txnId seen before is acknowledged and not processed again.
type Receiver struct {
	opts  ReceiverOptions
	log   *slog.Logger
	queue chan map[string]any
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}

	sending sync.RWMutex // held for reading while queueing; Close takes it to close the queue
	closed  bool         // under sending

	mu    sync.Mutex
	seen  map[string]bool
	order []string // seen ids, oldest first
}

// NewReceiver starts a receiver; Close stops it.
func NewReceiver(o ReceiverOptions) *Receiver {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Queue <= 0 {
		o.Queue = 1024
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 32 << 20
	}
	if o.Remember <= 0 {
		o.Remember = 10000
	}
	r := &Receiver{opts: o, log: o.Logger, queue: make(chan map[string]any, o.Queue), done: make(chan struct{}), seen: map[string]bool{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.ctx, r.stop = context.WithCancel(context.Background())
	go r.dispatch()
	return r
}

// dispatch starts the queued events in order, at most Concurrency at once.
func (r *Receiver) dispatch() {
	defer close(r.done)
	var wg sync.WaitGroup
	slots := make(chan struct{}, r.opts.Concurrency)
	for ev := range r.queue {
		slots <- struct{}{}
		wg.Add(1)
		go func(ev map[string]any) {
			defer func() { <-slots; wg.Done() }()
			r.opts.Feed.Deliver(r.ctx, ev)
		}(ev)
	}
	wg.Wait()
}

// Close stops accepting transactions and waits for the queued events until
// ctx ends, then cancels those still running.
func (r *Receiver) Close(ctx context.Context) {
	r.sending.Lock()
	if r.closed {
		r.sending.Unlock()
		return
	}
	r.closed = true
	close(r.queue)
	r.sending.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		r.stop()
		<-r.done
	}
	r.stop()
}

// ServeHTTP answers the appservice API.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := strings.TrimPrefix(req.URL.Path, "/_matrix/app/v1")
	kind, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	want := r.opts.Feed.HSToken()
	if want == "" {
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "No homeserver is configured")
		return
	}
	token := bearer(req)
	if token == "" {
		writeError(w, http.StatusUnauthorized, "M_UNAUTHORIZED", "Missing hs_token")
		return
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Wrong hs_token")
		return
	}
	switch {
	case kind == "transactions" && rest != "" && req.Method == http.MethodPut:
		r.transaction(w, req, rest)
	case (kind == "users" || kind == "rooms") && rest != "" && req.Method == http.MethodGet:
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "luamods creates no "+kind+" on demand")
	case kind == "ping" && req.Method == http.MethodPost:
		writeJSON(w, http.StatusOK, map[string]any{})
	default:
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	}
}

// bearer is the request's Authorization bearer token, else ?access_token=.
func bearer(req *http.Request) string {
	if scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return req.URL.Query().Get("access_token")
}

// transaction queues the events of one transaction, once per txnId.
func (r *Receiver) transaction(w http.ResponseWriter, req *http.Request, txnID string) {
	body, err := io.ReadAll(io.LimitReader(req.Body, r.opts.MaxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_UNKNOWN", "Could not read the transaction")
		return
	}
	if int64(len(body)) > r.opts.MaxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Transaction too large")
		return
	}
	var txn struct {
		Events []map[string]any `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&txn); err != nil {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "The transaction is not a JSON object with events")
		return
	}
	r.sending.RLock()
	defer r.sending.RUnlock()
	if r.closed {
		writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "Shutting down")
		return
	}
	if !r.claim(txnID) {
		writeJSON(w, http.StatusOK, map[string]any{}) // seen before: acknowledged, not processed again
		return
	}
	for i, ev := range txn.Events {
		select {
		case r.queue <- ev:
		case <-req.Context().Done():
			r.unclaim(txnID)
			r.log.Warn("appservice transaction abandoned while queueing; the homeserver will retry it", "txn_id", txnID, "queued", i, "events", len(txn.Events))
			return
		}
	}
	r.log.Debug("appservice transaction queued", "txn_id", txnID, "events", len(txn.Events))
	writeJSON(w, http.StatusOK, map[string]any{})
}

// claim marks txnID as processed; false when it already was.
func (r *Receiver) claim(txnID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[txnID] {
		return false
	}
	r.seen[txnID] = true
	r.order = append(r.order, txnID)
	if len(r.order) > r.opts.Remember {
		delete(r.seen, r.order[0])
		r.order = r.order[1:]
	}
	return true
}

func (r *Receiver) unclaim(txnID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, txnID)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"errcode": code, "error": msg})
}
