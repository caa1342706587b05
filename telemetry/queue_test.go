package telemetry

import (
	"fmt"
	"slices"
	"testing"
)

type countingCounters struct{ coalescedN, droppedN [numKinds]int }

func (c *countingCounters) coalesced(k topicKind) { c.coalescedN[k]++ }
func (c *countingCounters) dropped(k topicKind)   { c.droppedN[k]++ }

func msg(topic, payload string) message {
	return message{topic: topic, payload: []byte(payload), kind: Topics{Prefix: "r/"}.kind(topic)}
}

func payloads(ms []message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.topic+"="+string(m.payload))
	}
	return out
}

func TestOutQueue(t *testing.T) {
	for _, tc := range []struct {
		name                string
		maxTopics, maxEvent int
		ops                 func(q *outQueue)
		want                []string // the next take, in order
		coalesced, dropped  int
	}{
		{
			name: "latest wins per topic, first-arrival order kept",
			ops: func(q *outQueue) {
				q.push(msg("r/depth", "1"))
				q.push(msg("r/status", "a"))
				q.push(msg("r/depth", "2"))
				q.push(msg("r/depth", "3"))
			},
			want:      []string{"r/depth=3", "r/status=a"},
			coalesced: 2,
		},
		{
			name: "events are FIFO and go first",
			ops: func(q *outQueue) {
				q.push(msg("r/depth", "1"))
				q.push(msg("r/events", "e1"))
				q.push(msg("r/events", "e2"))
			},
			want: []string{"r/events=e1", "r/events=e2", "r/depth=1"},
		},
		{
			name:     "full event queue drops the oldest",
			maxEvent: 2,
			ops: func(q *outQueue) {
				for i := range 5 {
					q.push(msg("r/events", fmt.Sprint(i)))
				}
			},
			want:    []string{"r/events=3", "r/events=4"},
			dropped: 3,
		},
		{
			name:      "topic limit drops new topics, not updates",
			maxTopics: 2,
			ops: func(q *outQueue) {
				q.push(msg("r/a", "1"))
				q.push(msg("r/b", "1"))
				q.push(msg("r/c", "1"))
				q.push(msg("r/a", "2"))
			},
			want:      []string{"r/a=2", "r/b=1"},
			coalesced: 1,
			dropped:   1,
		},
		{
			name: "requeue yields to newer messages",
			ops: func(q *outQueue) {
				q.push(msg("r/depth", "old"))
				q.push(msg("r/status", "old"))
				q.push(msg("r/events", "e1"))
				batch := slices.Clone(q.take())
				q.push(msg("r/depth", "new"))
				q.push(msg("r/events", "e2"))
				q.requeue(batch) // the connection failed under the whole batch
			},
			want:      []string{"r/events=e1", "r/events=e2", "r/depth=new", "r/status=old"},
			coalesced: 1,
		},
		{
			name: "poses are kept in order, every one, like events",
			ops: func(q *outQueue) {
				q.push(msg("r/pose", "p1"))
				q.push(msg("r/depth", "d1"))
				q.push(msg("r/pose", "p2"))
				q.push(msg("r/depth", "d2"))
			},
			want:      []string{"r/pose=p1", "r/pose=p2", "r/depth=d2"},
			coalesced: 1,
		},
		{
			name:     "requeued events still respect the limit",
			maxEvent: 2,
			ops: func(q *outQueue) {
				q.push(msg("r/events", "e1"))
				q.push(msg("r/events", "e2"))
				batch := slices.Clone(q.take())
				q.push(msg("r/events", "e3"))
				q.requeue(batch)
			},
			want:    []string{"r/events=e2", "r/events=e3"},
			dropped: 1,
		},
		{
			name: "retained messages come back after a reconnection unless superseded",
			ops: func(q *outQueue) {
				s := msg("r/status", "running")
				s.retained = true
				q.sent(s)
				q.sent(msg("r/depth", "not retained"))
				p := msg("r/other", "v1")
				p.retained = true
				q.sent(p)
				q.push(msg("r/other", "v2"))
				q.requeueRetained()
			},
			want: []string{"r/other=v2", "r/status=running"},
		},
		{
			name: "closed queue drops",
			ops: func(q *outQueue) {
				q.push(msg("r/depth", "1"))
				if got := payloads(q.close()); !slices.Equal(got, []string{"r/depth=1"}) {
					panic(fmt.Sprint("close returned ", got))
				}
				q.push(msg("r/depth", "2"))
				q.push(msg("r/events", "e"))
				q.requeue([]message{msg("r/status", "s"), msg("r/pose", "p")})
			},
			dropped: 2 + 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &countingCounters{}
			q := newOutQueue(orDefault(tc.maxTopics, 8), orDefault(tc.maxEvent, 8), c)
			tc.ops(q)
			if got := payloads(q.take()); !slices.Equal(got, tc.want) {
				t.Errorf("take() = %q, want %q", got, tc.want)
			}
			if q.len() != 0 || q.take() != nil {
				t.Errorf("queue not empty after take")
			}
			var co, dr int
			for k := range numKinds {
				co += c.coalescedN[k]
				dr += c.droppedN[k]
			}
			if co != tc.coalesced || dr != tc.dropped {
				t.Errorf("coalesced %d dropped %d, want %d and %d", co, dr, tc.coalesced, tc.dropped)
			}
		})
	}
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func TestOutQueueSignals(t *testing.T) {
	q := newOutQueue(4, 4, &countingCounters{})
	for range 10 {
		q.push(msg("r/depth", "x")) // must not block although nobody reads ready
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("push did not signal")
	}
}
