package backendtest

import "testing"

func (s *suite) testElementwise(t *testing.T) {
	t.Skip("elementwise ops: conformance tests not written yet")
}
