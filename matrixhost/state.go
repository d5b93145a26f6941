package matrixhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// stateFilter is Synapse's StateFilter as a list of (type, state_key)
// pairs; a nil state_key means every state key of the type.
type stateFilter []statePair

type statePair struct {
	typ      string
	stateKey *string
}

// parseFilter reads a list of {type, state_key} pairs (state_key nil or
// api.json.null: any); {type = t, state_key = k} tables are accepted too.
// A nil list is no filter.
func parseFilter(list []any) (stateFilter, error) {
	if list == nil {
		return nil, nil
	}
	f := make(stateFilter, 0, len(list))
	for i, item := range list {
		var typ, key any
		switch p := item.(type) {
		case []any:
			if len(p) > 0 {
				typ = p[0]
			}
			if len(p) > 1 {
				key = p[1]
			}
		case map[string]any:
			typ, key = p["type"], p["state_key"]
		}
		t, ok := typ.(string)
		if !ok {
			return nil, fmt.Errorf("filter item %d must be a {type, state_key} pair (state_key api.json.null for any)", i+1)
		}
		pair := statePair{typ: t}
		if key != nil {
			k, ok := key.(string)
			if !ok {
				return nil, fmt.Errorf("filter item %d: state_key must be a string or api.json.null", i+1)
			}
			pair.stateKey = &k
		}
		f = append(f, pair)
	}
	return f, nil
}

// match reports whether the filter lets an event of (typ, key) through.
func (f stateFilter) match(typ, key string) bool {
	if f == nil {
		return true
	}
	for _, p := range f {
		if p.typ == typ && (p.stateKey == nil || *p.stateKey == key) {
			return true
		}
	}
	return false
}

// stateMap builds state[type][state_key] = event from a list of events.
func stateMap(events []any, f stateFilter) map[string]any {
	out := map[string]any{}
	for _, e := range events {
		ev, ok := e.(map[string]any)
		if !ok {
			continue
		}
		typ, _ := ev["type"].(string)
		key, hasKey := ev["state_key"].(string)
		if !hasKey || !f.match(typ, key) {
			continue
		}
		byKey, _ := out[typ].(map[string]any)
		if byKey == nil {
			byKey = map[string]any{}
			out[typ] = byKey
		}
		byKey[key] = ev
	}
	return out
}

// roomState reads a room's current state events: through Synapse's admin
// API when an admin token is configured, else as a local member of the
// room (the preferred users first, then those the feed showed joined).
func (h *Host) roomState(ctx context.Context, room string, preferred ...string) ([]any, error) {
	if h.opts.AdminToken != "" {
		res, err := h.do(ctx, call{method: "GET", path: admin("v1", "rooms", room, "state"), token: h.opts.AdminToken})
		if err == nil {
			if m, ok := res.(map[string]any); ok {
				if list, ok := m["state"].([]any); ok {
					return list, nil
				}
			}
			return nil, fmt.Errorf("GET %s: no state list in the answer", admin("v1", "rooms", room, "state"))
		}
		if !unrecognized(err) {
			return nil, err
		}
	}
	var viewers []string
	seen := map[string]bool{}
	for _, u := range append(append(preferred, h.members.of(room)...), h.sender()) {
		if u != "" && h.isMine(u) && !seen[u] {
			seen[u] = true
			viewers = append(viewers, u)
		}
	}
	var errs []error
	for _, u := range viewers {
		res, err := h.do(ctx, call{method: "GET", path: cs("rooms", room, "state"), query: as(u), token: h.opts.ASToken})
		if err == nil {
			if list, ok := res.([]any); ok {
				return list, nil
			}
			return nil, fmt.Errorf("GET %s: the answer is not a list of events", cs("rooms", room, "state"))
		}
		if !isStatus(err, 403, "") && !isStatus(err, 404, "") {
			return nil, err // the homeserver is down or the deadline passed: no point trying others
		}
		errs = append(errs, fmt.Errorf("as %s: %w", u, err))
	}
	return nil, fmt.Errorf("no local user known to be in room %s could read its state (luamods learns members from the appservice feed; an admin token at %s reads any room through GET %s): %w",
		room, h.opts.AdminTokenPath, admin("v1", "rooms", room, "state"), errors.Join(errs...))
}

// filteredRoomState reads the arguments (room_id, <filterArg>) of a state
// method and returns the room's state events and the filter.
func (h *Host) filteredRoomState(ctx context.Context, a []any, filterArg string) ([]any, stateFilter, error) {
	r := read(a)
	room := r.str(0, "room_id")
	list := r.list(1, filterArg)
	if r.err != nil {
		return nil, nil, r.err
	}
	f, err := parseFilter(list)
	if err != nil {
		return nil, nil, err
	}
	events, err := h.roomState(ctx, room)
	return events, f, err
}

// getRoomState is get_room_state(room_id, event_filter) → state map.
func (h *Host) getRoomState(ctx context.Context, a []any) (any, error) {
	events, f, err := h.filteredRoomState(ctx, a, "event_filter")
	if err != nil {
		return nil, err
	}
	return stateMap(events, f), nil
}

// getStateEventsInRoom is get_state_events_in_room(room_id, types) → a
// list of events.
func (h *Host) getStateEventsInRoom(ctx context.Context, a []any) (any, error) {
	events, f, err := h.filteredRoomState(ctx, a, "types")
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, e := range events {
		ev, _ := e.(map[string]any)
		typ, _ := ev["type"].(string)
		key, ok := ev["state_key"].(string)
		if ok && f.match(typ, key) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// getCanonicalRoomAlias is get_canonical_room_alias(room_id) → the alias of
// m.room.canonical_alias, or nil.
func (h *Host) getCanonicalRoomAlias(ctx context.Context, a []any) (any, error) {
	r := read(a)
	room := r.str(0, "room_id")
	if r.err != nil {
		return nil, r.err
	}
	events, err := h.roomState(ctx, room)
	if err != nil {
		return nil, err
	}
	ev := stateEvent(stateMap(events, nil), "m.room.canonical_alias", "")
	content, _ := ev["content"].(map[string]any)
	if alias, ok := content["alias"].(string); ok && alias != "" {
		return alias, nil
	}
	return nil, nil
}

// stateEvent returns state[typ][key], or nil.
func stateEvent(state map[string]any, typ, key string) map[string]any {
	byKey, _ := state[typ].(map[string]any)
	ev, _ := byKey[key].(map[string]any)
	return ev
}

// EventState returns the room state after a feed event, as a state map,
// for third_party_rules.on_new_event: read as the event's local sender or
// target when there is one.
func (h *Host) EventState(ctx context.Context, event map[string]any) (map[string]any, error) {
	room, _ := event["room_id"].(string)
	if room == "" {
		return map[string]any{}, nil
	}
	var preferred []string
	for _, k := range []string{"sender", "state_key"} {
		if u, ok := event[k].(string); ok && strings.HasPrefix(u, "@") {
			preferred = append(preferred, u)
		}
	}
	events, err := h.roomState(ctx, room, preferred...)
	if err != nil {
		return nil, err
	}
	return stateMap(events, nil), nil
}
