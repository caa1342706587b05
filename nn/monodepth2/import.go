package monodepth2

import (
	"fmt"
	"strings"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/tensor"
)

// unusedInCheckpoint reports the keys a released checkpoint holds that no network
// here uses: torchvision's classifier (fc) and batch norm's step counters.
func unusedInCheckpoint(name string) bool {
	return strings.HasPrefix(name, "encoder.fc.") || strings.HasSuffix(name, ".num_batches_tracked")
}

// Import loads a Monodepth2 checkpoint (the four released files) into the model.
// Every parameter must be present with its shape; the error names the file and every
// missing, unexpected or mis-shaped key.
func (m *Model) Import(b tensor.Backend, ck *nn.Monodepth2Checkpoint) error {
	if s := m.Options.ChannelScale; s != 0 && s != 1 {
		return fmt.Errorf("monodepth2 import: a model with channel scale %g cannot hold a released checkpoint (scale 1)", s)
	}
	for _, f := range []struct {
		file, prefix string
		ts           []nn.NamedTensor
	}{
		{"encoder.pth", EncoderPrefix, ck.Encoder},
		{"depth.pth", DepthPrefix, ck.Depth},
		{"pose_encoder.pth", PoseEncoderPrefix, ck.PoseEncoder},
		{"pose.pth", PosePrefix, ck.Pose},
	} {
		if err := m.Params.Load(b, f.file, f.prefix, f.ts, unusedInCheckpoint); err != nil {
			return fmt.Errorf("monodepth2 import: %w", err)
		}
	}
	return nil
}
