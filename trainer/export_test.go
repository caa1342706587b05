package trainer

import "context"

// Seams for the external tests of the continual learner.

// SetContinualWork replaces the unit of work of the learner's duty-cycled loop.
func SetContinualWork(c *Continual, f func(ctx context.Context) (bool, error)) { c.work = f }

// SetContinualValidate replaces the held-out error of the model's current weights.
func SetContinualValidate(c *Continual, f func(ctx context.Context, batches []*HostBatch) (float64, error)) {
	c.validate = f
}

// SetContinualHooks observes the states the loop enters and the batches trained on.
func SetContinualHooks(c *Continual, state func(string), batch func(ids []string)) {
	c.onState, c.onBatch = state, batch
}

// ContinualBuffers returns the learner's replay buffer and held-out set.
func ContinualBuffers(c *Continual) (replay, validation *ReplayBuffer) { return c.replay, c.val }

// ContinualOptimizerSteps is the number of steps Adam's moments have seen.
func ContinualOptimizerSteps(c *Continual) int { return c.tr.adam.Steps() }
