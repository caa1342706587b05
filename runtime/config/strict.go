package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes YAML into dst after checking every mapping key against the yaml
// tags of dst's struct types, so that a typo names its full path ("mqtt.brokr_url")
// rather than only a line, which is what yaml.v3's KnownFields reports.
func decodeStrict(data []byte, dst any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("malformed YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return nil // an empty file keeps the defaults
	}
	doc := root.Content[0]
	if err := checkKeys(doc, reflect.TypeOf(dst).Elem(), ""); err != nil {
		return err
	}
	if err := doc.Decode(dst); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return fmt.Errorf("wrong type: %s", strings.Join(te.Errors, "; "))
		}
		return err
	}
	return nil
}

func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Duration(0)) {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		return fmt.Errorf("line %d: %s: expected a mapping of keys, got %q", n.Line, orRoot(path), n.Value)
	}
	fields := yamlFields(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		if seen[k.Value] {
			return fmt.Errorf("line %d: %s: key given twice", k.Line, key)
		}
		seen[k.Value] = true
		f, ok := fields[k.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown key %s (known keys of %s: %s)",
				k.Line, key, orRoot(path), strings.Join(sortedKeys(fields), ", "))
		}
		if err := checkKeys(v, f.Type, key); err != nil {
			return err
		}
	}
	return nil
}

// yamlFields maps yaml keys to the struct fields that carry them; the fields of a struct
// embedded with `yaml:",inline"` count as the outer struct's own (Index reaches them).
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			for k, inner := range yamlFields(f.Type) {
				inner.Index = append([]int{i}, inner.Index...)
				out[k] = inner
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func sortedKeys(m map[string]reflect.StructField) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// EnvPrefix starts every environment override.
const EnvPrefix = "EDGEDEPTH_"

// envNotKeys are EDGEDEPTH_* variables that are not configuration keys: the config
// file's path, and where the libraries loaded at run time are (jetson/cuda, jetson/trt).
var envNotKeys = map[string]bool{
	"EDGEDEPTH_CONFIG":            true,
	"EDGEDEPTH_CUDA_LIBRARY_PATH": true,
	"EDGEDEPTH_CUDA_CACHE_DIR":    true,
	"EDGEDEPTH_CUDA_SYNC":         true,
	"EDGEDEPTH_ONNXRUNTIME_LIB":   true,
}

// applyEnv sets fields from EDGEDEPTH_* variables. A variable that matches no key is an
// error that names it: a mistyped override silently ignored is a field day lost.
func applyEnv(c *Config, environ []string) error {
	leaves := map[string]reflect.Value{}
	collectLeaves(reflect.ValueOf(c).Elem(), "", leaves)
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || envNotKeys[name] {
			continue
		}
		f, ok := leaves[name]
		if !ok {
			return fmt.Errorf("environment variable %s matches no configuration key", name)
		}
		if err := setFromString(f, val); err != nil {
			return fmt.Errorf("environment variable %s=%q: %w", name, val, err)
		}
	}
	return nil
}

// EnvNames lists every environment override, sorted (for --help and the README).
func EnvNames() []string {
	leaves := map[string]reflect.Value{}
	c := Default()
	collectLeaves(reflect.ValueOf(&c).Elem(), "", leaves)
	names := make([]string, 0, len(leaves))
	for k := range leaves {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func collectLeaves(v reflect.Value, path string, out map[string]reflect.Value) {
	t := v.Type()
	for name, f := range yamlFields(t) {
		fv := v.FieldByIndex(f.Index)
		p := join(path, name)
		if fv.Kind() == reflect.Struct {
			collectLeaves(fv, p, out)
			continue
		}
		out[EnvPrefix+strings.ToUpper(strings.ReplaceAll(p, ".", "_"))] = fv
	}
}

func setFromString(f reflect.Value, s string) error {
	if f.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 500ms, 5s, 1m)")
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment (type %s)", f.Type())
		}
		parts := strings.Split(s, ",")
		f.Set(reflect.ValueOf(parts).Convert(f.Type()))
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean (true or false)")
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		f.SetInt(i)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("cannot be set from the environment (type %s)", f.Type())
	}
	return nil
}
