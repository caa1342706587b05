// Package health is the daemon's list of what is degraded and why. Parts report
// problems under their own name; status messages, /healthz and `doctor` read the list.
// An optional part that fails shows up here instead of stopping the process.
package health

import (
	"sort"
	"sync"
	"time"
)

// Warning is one degraded part.
type Warning struct {
	Component string    `json:"component"`
	Message   string    `json:"message"`
	Since     time.Time `json:"since"`
}

// Tracker holds the current warnings. The zero value is ready to use; it is safe for
// concurrent use.
type Tracker struct {
	mu       sync.Mutex
	warnings map[string]Warning
}

// Set marks component as degraded with a message that says what is wrong and, where it
// can, what to do. Setting the same message again keeps the original Since.
func (t *Tracker) Set(component, message string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.warnings == nil {
		t.warnings = make(map[string]Warning)
	}
	if w, ok := t.warnings[component]; ok && w.Message == message {
		return
	}
	t.warnings[component] = Warning{Component: component, Message: message, Since: time.Now()}
}

// Clear marks component as healthy.
func (t *Tracker) Clear(component string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.warnings, component)
}

// Report sets the warning when err is non-nil and clears it otherwise.
func (t *Tracker) Report(component string, err error) {
	if err != nil {
		t.Set(component, err.Error())
	} else {
		t.Clear(component)
	}
}

// Warnings lists the current warnings sorted by component.
func (t *Tracker) Warnings() []Warning {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Warning, 0, len(t.warnings))
	for _, w := range t.warnings {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Component < out[j].Component })
	return out
}

// OK reports whether nothing is degraded.
func (t *Tracker) OK() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.warnings) == 0
}
