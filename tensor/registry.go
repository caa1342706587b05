package tensor

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Opener opens a backend. It returns an error (not a panic, not an exit) when the
// hardware or libraries it needs are missing.
type Opener func() (Backend, error)

var (
	registryMu sync.Mutex
	registry   = map[string]Opener{}
)

// Register makes a backend available to Open under name. Backends register
// themselves from an init function; registering a name twice is a programmer error.
func Register(name string, open Opener) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("tensor: backend " + name + " registered twice")
	}
	registry[name] = open
}

// Open opens the backend registered under name.
func Open(name string) (Backend, error) {
	registryMu.Lock()
	open, ok := registry[name]
	registryMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("tensor: no backend %q (known: %s); import its package to register it", name, strings.Join(Names(), ", "))
	}
	b, err := open()
	if err != nil {
		return nil, fmt.Errorf("tensor: open backend %s: %w", name, err)
	}
	return b, nil
}

// Names lists the registered backends, sorted.
func Names() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
