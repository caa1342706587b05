// Command depth-consumer is a minimal consumer of edgedepth's depth messages, written
// the way a robot's other software would: only paho and the standard library's PNG
// decoder, no edgedepth packages. It subscribes to edgedepth/<robot>/depth, reads the
// metadata from the PNG's tEXt chunks, and prints, per message, the sequence number, the
// capture stamp, the latency, and the depth at the image centre in metres.
//
//	go run ./examples/depth-consumer --broker tcp://127.0.0.1:1883 --robot $(hostname)
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"image"
	"image/png"
	"log"
	"os"
	"os/signal"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	broker := flag.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	robot := flag.String("robot", "+", "robot id (+ = every robot)")
	count := flag.Int("count", 0, "exit after this many depth messages (0 = run until Ctrl-C)")
	flag.Parse()

	msgs := make(chan mqtt.Message, 16)
	opts := mqtt.NewClientOptions().AddBroker(*broker).SetClientID(fmt.Sprintf("depth-consumer-%d", os.Getpid()))
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		log.Fatalf("connect %s: %v", *broker, tok.Error())
	}
	defer c.Disconnect(250)
	topic := "edgedepth/" + *robot + "/depth"
	// Hand messages off: a slow handler would stall paho's keep-alive.
	if tok := c.Subscribe(topic, 0, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case msgs <- m:
		default: // we are behind: skip this frame, the next one is fresher
		}
	}); tok.Wait() && tok.Error() != nil {
		log.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)

	for n := 0; *count == 0 || n < *count; n++ {
		select {
		case <-stop:
			return
		case m := <-msgs:
			if err := show(m.Topic(), m.Payload()); err != nil {
				log.Printf("%s: %v", m.Topic(), err)
			}
		}
	}
}

func show(topic string, payload []byte) error {
	img, err := png.Decode(bytes.NewReader(payload))
	if err != nil {
		return err
	}
	depth, ok := img.(*image.Gray16)
	if !ok {
		return fmt.Errorf("not a 16-bit greyscale PNG")
	}
	meta := textChunks(payload)
	stamp, _ := time.Parse(time.RFC3339Nano, meta["edgedepth:stamp"])
	b := depth.Bounds()
	centre := depth.Gray16At(b.Dx()/2, b.Dy()/2).Y // millimetres; 0 = no estimate
	fmt.Printf("%s seq=%s stamp=%s latency=%s size=%dx%d centre=%.3f m fx=%s baseline=%s m\n",
		topic, meta["edgedepth:seq"], stamp.Format(time.RFC3339Nano), time.Since(stamp).Round(time.Millisecond),
		b.Dx(), b.Dy(), float64(centre)/1000, meta["edgedepth:fx"], meta["edgedepth:baseline_m"])
	return nil
}

// textChunks returns the keyword/text pairs of a PNG's tEXt chunks. Chunk layout: 4-byte
// big-endian length, 4-byte type, data, 4-byte CRC; the PNG signature is 8 bytes.
func textChunks(p []byte) map[string]string {
	out := map[string]string{}
	for i := 8; i+12 <= len(p); {
		n := int(binary.BigEndian.Uint32(p[i:]))
		typ := string(p[i+4 : i+8])
		if i+12+n > len(p) {
			break
		}
		if typ == "tEXt" {
			if k, v, ok := strings.Cut(string(p[i+8:i+8+n]), "\x00"); ok {
				out[k] = v
			}
		}
		if typ == "IDAT" || typ == "IEND" {
			break // our metadata comes before the image data
		}
		i += 12 + n
	}
	return out
}
