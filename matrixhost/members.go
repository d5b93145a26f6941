package matrixhost

import "sync"

// maxRooms and maxMembersPerRoom bound what members remembers.
const (
	maxRooms          = 100_000
	maxMembersPerRoom = 8
)

// members remembers, per room, a few local users known to be joined: the
// client-server API shows a room's state only to its members, so reading
// the state of a room without an admin token goes through one of them.
// It learns from the appservice feed and from the joins the Host makes.
type members struct {
	mu    sync.Mutex
	rooms map[string][]string // room id → joined local users, most recent first
}

func newMembers() *members { return &members{rooms: map[string][]string{}} }

// joined records that user is in room.
func (m *members) joined(room, user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.rooms[room]
	for i, u := range list {
		if u == user {
			copy(list[1:i+1], list[:i])
			list[0] = user
			return
		}
	}
	if list == nil && len(m.rooms) >= maxRooms {
		for r := range m.rooms { // forget an arbitrary room
			delete(m.rooms, r)
			break
		}
	}
	list = append([]string{user}, list...)
	if len(list) > maxMembersPerRoom {
		list = list[:maxMembersPerRoom]
	}
	m.rooms[room] = list
}

// left records that user is no longer in room.
func (m *members) left(room, user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.rooms[room]
	for i, u := range list {
		if u == user {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(m.rooms, room)
		return
	}
	m.rooms[room] = list
}

// of returns the local users known to be in room.
func (m *members) of(room string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.rooms[room]...)
}

// Observe learns from an event of the appservice feed which local users
// are in its room: the sender of any event, and the target of a
// membership event.
func (h *Host) Observe(event map[string]any) {
	room, _ := event["room_id"].(string)
	if room == "" {
		return
	}
	typ, _ := event["type"].(string)
	sender, _ := event["sender"].(string)
	if typ == "m.room.member" {
		target, _ := event["state_key"].(string)
		content, _ := event["content"].(map[string]any)
		membership, _ := content["membership"].(string)
		if h.isMine(target) {
			if membership == "join" {
				h.members.joined(room, target)
			} else {
				h.members.left(room, target)
			}
		}
		if target == sender {
			return
		}
	}
	if h.isMine(sender) {
		h.members.joined(room, sender)
	}
}
