package telemetry

import (
	"fmt"
	"testing"
)

// BenchmarkPublishEnqueue measures what Publish costs the caller (the inference
// loop): no broker is involved, only the queue. Nothing drains it, so after the first
// call each topic's message replaces the previous one, the steady state of a slow
// link; events cycle through their bounded FIFO.
func BenchmarkPublishEnqueue(b *testing.B) {
	tp, _ := NewTopics("bench")
	payload := make([]byte, 64<<10)
	for _, bc := range []struct {
		name   string
		topics []string
	}{
		{"depth", []string{tp.Depth()}},
		{"frame", []string{tp.Depth(), tp.DepthPreview(), tp.Pose()}},
		{"events", []string{tp.Events()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := NewPublisher(MQTTConfig{}, tp, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Publish(bc.topics[i%len(bc.topics)], payload, 0, false)
				i++
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		p, err := NewPublisher(MQTTConfig{}, tp, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		topics := make([]string, 8)
		for i := range topics {
			topics[i] = fmt.Sprint(tp.Prefix, "t", i)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				p.Publish(topics[i%len(topics)], payload, 0, false)
				i++
			}
		})
	})
}
