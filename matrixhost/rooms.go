package matrixhost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// updateRoomMembership is update_room_membership(sender, target, room_id,
// new_membership, content, remote_room_hosts) → the membership event. The
// change is made as sender: join and leave of oneself, invite, kick (leave
// of another), ban, unban, knock.
func (h *Host) updateRoomMembership(ctx context.Context, a []any) (any, error) {
	r := read(a)
	sender := r.str(0, "sender")
	target := r.str(1, "target")
	room := r.str(2, "room_id")
	membership := r.str(3, "new_membership")
	content := r.obj(4, "content", true)
	hosts := r.list(5, "remote_room_hosts")
	r.check(h.localUser(sender, "sender"))
	if r.err != nil {
		return nil, r.err
	}
	body := map[string]any{}
	if reason, ok := content["reason"].(string); ok {
		body["reason"] = reason
	}
	q := as(sender)
	var path string
	switch {
	case membership == "join" && sender == target:
		path = cs("join", room)
		for _, s := range hosts {
			if s, ok := s.(string); ok {
				q.Add("server_name", s)
				q.Add("via", s)
			}
		}
	case membership == "knock" && sender == target:
		path = cs("knock", room)
	case membership == "leave" && sender == target:
		path = cs("rooms", room, "leave")
	case membership == "leave":
		path, body["user_id"] = cs("rooms", room, "kick"), target
	case membership == "invite":
		path, body["user_id"] = cs("rooms", room, "invite"), target
	case membership == "ban":
		path, body["user_id"] = cs("rooms", room, "ban"), target
	case membership == "unban":
		path, body["user_id"] = cs("rooms", room, "unban"), target
	default:
		return nil, fmt.Errorf("cannot make %s's membership %q as %s (join, knock and leave are for oneself; invite, leave (kick), ban and unban for others)", target, membership, sender)
	}
	res, err := h.do(ctx, call{method: "POST", path: path, query: q, body: body, token: h.opts.ASToken})
	if err != nil {
		return nil, err
	}
	if id, ok := res.(map[string]any)["room_id"].(string); ok && id != "" {
		room = id // a join by alias answers the room id
	}
	switch membership {
	case "join":
		h.members.joined(room, target)
	case "leave", "ban":
		h.members.left(room, target)
	}
	return h.membershipEvent(ctx, room, sender, target, membership), nil
}

// membershipEvent returns target's membership event in room as the
// homeserver has it, read as sender (or the target, after a leave); when
// the state cannot be read, the event as made, without an event_id.
func (h *Host) membershipEvent(ctx context.Context, room, sender, target, membership string) map[string]any {
	events, err := h.roomState(ctx, room, sender, target)
	if err == nil {
		if ev := stateEvent(stateMap(events, nil), "m.room.member", target); ev != nil {
			return ev
		}
	}
	return map[string]any{"type": "m.room.member", "room_id": room, "sender": sender, "state_key": target, "content": map[string]any{"membership": membership}}
}

// createAndSendEventIntoRoom is create_and_send_event_into_room(event_dict)
// → the event: a state event (with state_key) through PUT
// /rooms/{room}/state/{type}/{state_key}, any other through PUT
// /rooms/{room}/send/{type}/{txn}, as the event's sender.
func (h *Host) createAndSendEventIntoRoom(ctx context.Context, a []any) (any, error) {
	ar := read(a)
	ev := ar.obj(0, "event_dict", false)
	if ar.err != nil {
		return nil, ar.err
	}
	r := read([]any{ev["type"], ev["room_id"], ev["sender"]})
	typ, room, sender := r.str(0, "event_dict.type"), r.str(1, "event_dict.room_id"), r.str(2, "event_dict.sender")
	r.check(h.localUser(sender, "event_dict.sender"))
	if r.err != nil {
		return nil, r.err
	}
	if typ == "m.room.member" {
		return nil, fmt.Errorf("membership events go through update_room_membership")
	}
	content, _ := ev["content"].(map[string]any)
	if content == nil {
		content = map[string]any{}
	}
	var path string
	out := map[string]any{"type": typ, "room_id": room, "sender": sender, "content": content}
	if key, ok := ev["state_key"].(string); ok {
		path = cs("rooms", room, "state", typ, key)
		out["state_key"] = key
	} else {
		txn, err := newTxnID()
		if err != nil {
			return nil, err
		}
		path = cs("rooms", room, "send", typ, txn)
	}
	res, err := h.do(ctx, call{method: "PUT", path: path, query: as(sender), body: content, token: h.opts.ASToken})
	if err != nil {
		return nil, err
	}
	out["event_id"], _ = res.(map[string]any)["event_id"].(string)
	h.members.joined(room, sender)
	return out, nil
}

func newTxnID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "luamods." + hex.EncodeToString(b), nil
}

// createRoom is create_room(user_id, config, ratelimit, creator_join_profile)
// → room_id, alias (or nil): POST /createRoom as the user.
func (h *Host) createRoom(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := r.str(0, "user_id")
	r.check(h.localUser(user, "user_id"))
	config := r.obj(1, "config", true)
	if r.err != nil {
		return nil, r.err
	}
	if config == nil {
		config = map[string]any{}
	}
	res, err := h.do(ctx, call{method: "POST", path: cs("createRoom"), query: as(user), body: config, token: h.opts.ASToken})
	if err != nil {
		return nil, err
	}
	room, _ := res.(map[string]any)["room_id"].(string)
	h.members.joined(room, user)
	var alias any
	if name, ok := config["room_alias_name"].(string); ok && name != "" {
		alias = "#" + name + ":" + h.opts.ServerName
	}
	return tuple(room, alias), nil
}

// deleteRoom is delete_room(room_id): Synapse's DELETE
// /_synapse/admin/v2/rooms/{room_id} with purge, not waited for.
func (h *Host) deleteRoom(ctx context.Context, a []any) (any, error) {
	r := read(a)
	room := r.str(0, "room_id")
	if r.err != nil {
		return nil, r.err
	}
	path := admin("v2", "rooms", room)
	token, err := h.adminToken("DELETE " + path)
	if err != nil {
		return nil, err
	}
	_, err = h.do(ctx, call{method: "DELETE", path: path, body: map[string]any{"purge": true}, token: token})
	return nil, err
}

// lookupRoomAlias is lookup_room_alias(alias) → room_id, servers.
func (h *Host) lookupRoomAlias(ctx context.Context, a []any) (any, error) {
	r := read(a)
	alias := r.str(0, "room_alias")
	if r.err != nil {
		return nil, r.err
	}
	res, err := h.do(ctx, call{method: "GET", path: cs("directory", "room", alias), query: as(h.sender()), token: h.opts.ASToken})
	if err != nil {
		return nil, err
	}
	m, _ := res.(map[string]any)
	servers, _ := m["servers"].([]any)
	if servers == nil {
		servers = []any{}
	}
	return tuple(m["room_id"], servers), nil
}

// roomIsInPublicRoomList is public_room_list_manager.
// room_is_in_public_room_list(room_id) → boolean (false for an unknown room).
func (h *Host) roomIsInPublicRoomList(ctx context.Context, a []any) (any, error) {
	r := read(a)
	room := r.str(0, "room_id")
	if r.err != nil {
		return nil, r.err
	}
	res, err := h.do(ctx, call{method: "GET", path: cs("directory", "list", "room", room), query: as(h.sender()), token: h.opts.ASToken})
	if isStatus(err, 404, "") {
		return false, nil
	}
	if err != nil {
		return nil, err
	}
	return res.(map[string]any)["visibility"] == "public", nil
}

// setRoomVisibility is add_room_to_public_room_list and
// remove_room_from_public_room_list: PUT /directory/list/room/{room} as a
// local member of the room allowed to (the highest power level first).
func (h *Host) setRoomVisibility(visibility string) method {
	return func(ctx context.Context, a []any) (any, error) {
		r := read(a)
		room := r.str(0, "room_id")
		if r.err != nil {
			return nil, r.err
		}
		events, err := h.roomState(ctx, room)
		if err != nil {
			return nil, err
		}
		actor := h.powerfulMember(stateMap(events, nil))
		if actor == "" {
			return nil, fmt.Errorf("no local member of %s to change its directory visibility as", room)
		}
		_, err = h.do(ctx, call{method: "PUT", path: cs("directory", "list", "room", room), query: as(actor), body: map[string]any{"visibility": visibility}, token: h.opts.ASToken})
		return nil, err
	}
}

// powerfulMember returns the joined local user with the highest power level.
func (h *Host) powerfulMember(state map[string]any) string {
	pl, _ := stateEvent(state, "m.room.power_levels", "")["content"].(map[string]any)
	users, _ := pl["users"].(map[string]any)
	best, bestLevel := "", int64(-1<<62)
	byKey, _ := state["m.room.member"].(map[string]any)
	for user, e := range byKey {
		ev, _ := e.(map[string]any)
		content, _ := ev["content"].(map[string]any)
		if content["membership"] != "join" || !h.isMine(user) {
			continue
		}
		level := number(users[user], number(pl["users_default"], 0))
		if level > bestLevel || (level == bestLevel && user < best) {
			best, bestLevel = user, level
		}
	}
	return best
}

// number reads a JSON number (json.Number, int64 or float64), else def.
func number(v any, def int64) int64 {
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }:
		if i, err := n.Int64(); err == nil {
			return i
		}
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return def
}
