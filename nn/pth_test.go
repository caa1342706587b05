package nn

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// The first tests here need no Python: they build small checkpoints byte by byte,
// following torch.save's layout, so the readers are covered where PyTorch is not
// installed. The tests after them read files written by PyTorch itself (Debian's
// python3-torch at /usr/bin/python3) and skip, saying so, where it is missing.

// pklBuilder writes pickle protocol 2 opcodes.
type pklBuilder struct{ bytes.Buffer }

func (p *pklBuilder) op(b ...byte) *pklBuilder { p.Write(b); return p }

func (p *pklBuilder) str(s string) *pklBuilder {
	p.WriteByte('X') // BINUNICODE
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

func (p *pklBuilder) global(module, name string) *pklBuilder {
	p.WriteString("c" + module + "\n" + name + "\n")
	return p
}

func (p *pklBuilder) int(n int) *pklBuilder {
	p.WriteByte('J') // BININT
	binary.Write(&p.Buffer, binary.LittleEndian, int32(n))
	return p
}

func (p *pklBuilder) ints(ns ...int) *pklBuilder {
	p.op('(')
	for _, n := range ns {
		p.int(n)
	}
	return p.op('t')
}

// pthTestTensor is one tensor entry of a hand-built checkpoint.
type pthTestTensor struct {
	name, class, key string
	storageNumel     int
	offset           int
	size, stride     []int
	view             []any // legacy storage view (key, offset, size), or nil
	isParameter      bool
}

// pthTestPickle builds the state-dict pickle: tensors first, then extras (ints, bools).
func pthTestPickle(legacy bool, ts []pthTestTensor, intExtras map[string]int, boolExtras map[string]bool) []byte {
	p := &pklBuilder{}
	p.op(0x80, 2, '}', '(')
	for _, t := range ts {
		p.str(t.name)
		if t.isParameter {
			p.global("torch._utils", "_rebuild_parameter").op('(')
		}
		p.global("torch._utils", "_rebuild_tensor_v2").op('(')
		p.op('(').str("storage").global("torch", t.class).str(t.key).str("cpu").int(t.storageNumel)
		if legacy {
			if t.view == nil {
				p.op('N')
			} else {
				p.op('(').str(t.view[0].(string)).int(t.view[1].(int)).int(t.view[2].(int)).op('t')
			}
		}
		p.op('t', 'Q')
		p.int(t.offset).ints(t.size...).ints(t.stride...).op(0x89).global("collections", "OrderedDict").op(')', 'R', 't', 'R')
		if t.isParameter {
			p.op(0x89).global("collections", "OrderedDict").op(')', 'R', 't', 'R')
		}
	}
	for _, k := range sortedKeys(intExtras) {
		p.str(k).int(intExtras[k])
	}
	for _, k := range sortedKeys(boolExtras) {
		p.str(k)
		if boolExtras[k] {
			p.op(0x88)
		} else {
			p.op(0x89)
		}
	}
	p.op('u', '.')
	return p.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func f32Bytes(vs ...float32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// pthTestZip lays out a zip checkpoint as torch >= 1.6 does.
func pthTestZip(t *testing.T, prefix string, pkl []byte, storages map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	add(prefix+"/data.pkl", pkl)
	for _, k := range sortedKeys(storages) {
		add(prefix+"/data/"+k, storages[k])
	}
	add(prefix+"/version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pthTestLegacy lays out a legacy checkpoint: magic, version, sys info, the dict, the
// storage keys, then each storage as an int64 element count and its bytes (elemSize
// bytes an element; 4 for keys it does not name).
func pthTestLegacy(pkl []byte, keys []string, storages map[string][]byte, elemSize map[string]int) []byte {
	var b bytes.Buffer
	magic := []byte{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19} // 0x1950a86a20f9469cfc6c, little-endian
	b.Write([]byte{0x80, 2, 0x8a, 10})
	b.Write(magic)
	b.WriteByte('.')
	b.Write([]byte{0x80, 2, 'M', 0xe9, 0x03, '.'}) // 1001
	sys := &pklBuilder{}
	sys.op(0x80, 2, '}', '(').str("protocol_version").int(1001).str("little_endian").op(0x88).op('u', '.')
	b.Write(sys.Bytes())
	b.Write(pkl)
	kp := &pklBuilder{}
	kp.op(0x80, 2, ']', '(')
	for _, k := range keys {
		kp.str(k)
	}
	kp.op('e', '.')
	b.Write(kp.Bytes())
	for _, k := range keys {
		size := elemSize[k]
		if size == 0 {
			size = 4
		}
		binary.Write(&b, binary.LittleEndian, int64(len(storages[k])/size))
		b.Write(storages[k])
	}
	return b.Bytes()
}

func readPthBytes(b []byte) ([]NamedTensor, map[string]any, error) {
	return readPth(bytes.NewReader(b), int64(len(b)))
}

// The hand-built checkpoint: a transposed view, a slice with a storage offset sharing
// that storage, a parameter, a float64 tensor, an int64 counter and extras.
func handBuiltCheckpoint(t *testing.T, legacy bool) []byte {
	st0 := f32Bytes(0, 1, 2, 3, 4, 5)
	f64 := make([]byte, 0, 16)
	f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(0.1))
	f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(-3))
	cnt := binary.LittleEndian.AppendUint64(nil, 7)
	ts := []pthTestTensor{
		{name: "conv.weight", class: "FloatStorage", key: "0", storageNumel: 6, size: []int{3, 2}, stride: []int{1, 3}},
		{name: "conv.bias", class: "FloatStorage", key: "0", storageNumel: 6, offset: 4, size: []int{2}, stride: []int{1}},
		{name: "fc.weight", class: "FloatStorage", key: "0", storageNumel: 6, size: []int{2, 3}, stride: []int{3, 1}, isParameter: true},
		{name: "double", class: "DoubleStorage", key: "1", storageNumel: 2, size: []int{2}, stride: []int{1}},
		{name: "bn.num_batches_tracked", class: "LongStorage", key: "2", storageNumel: 1, size: []int{}, stride: []int{}},
	}
	pkl := pthTestPickle(legacy, ts, map[string]int{"height": 64, "width": 192}, map[string]bool{"use_stereo": true})
	storages := map[string][]byte{"0": st0, "1": f64, "2": cnt}
	if !legacy {
		return pthTestZip(t, "archive", pkl, storages)
	}
	return pthTestLegacy(pkl, []string{"0", "1", "2"}, storages, map[string]int{"1": 8, "2": 8})
}

func TestReadPthHandBuilt(t *testing.T) {
	want := []NamedTensor{
		{Name: "conv.weight", Shape: tensor.Shape{3, 2}, Data: []float32{0, 3, 1, 4, 2, 5}},
		{Name: "conv.bias", Shape: tensor.Shape{2}, Data: []float32{4, 5}},
		{Name: "fc.weight", Shape: tensor.Shape{2, 3}, Data: []float32{0, 1, 2, 3, 4, 5}},
		{Name: "double", Shape: tensor.Shape{2}, Data: []float32{0.1, -3}},
	}
	wantExtras := map[string]any{
		"bn.num_batches_tracked": IntTensor{DType: "int64", Shape: tensor.Shape{}, Data: []int64{7}},
		"height":                 64, "width": 192, "use_stereo": true,
	}
	for _, legacy := range []bool{false, true} {
		name := map[bool]string{false: "zip", true: "legacy"}[legacy]
		t.Run(name, func(t *testing.T) {
			ts, extras, err := readPthBytes(handBuiltCheckpoint(t, legacy))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ts, want) {
				t.Errorf("tensors\n got %+v\nwant %+v", ts, want)
			}
			if !reflect.DeepEqual(extras, wantExtras) {
				t.Errorf("extras\n got %#v\nwant %#v", extras, wantExtras)
			}
		})
	}
}

func TestReadPthLegacyStorageView(t *testing.T) {
	// Elements [2, 8) of a 10-element root storage, viewed from offset 1 with strides
	// (1, 2): torch gives [[3, 5], [4, 6]] (checked against torch.load in
	// the torch fixture view_legacy.pth, whose layout is the same).
	ts := []pthTestTensor{
		{name: "view", class: "FloatStorage", key: "root", storageNumel: 10, offset: 1, size: []int{2, 2}, stride: []int{1, 2}, view: []any{"v1", 2, 6}},
	}
	root := f32Bytes(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	b := pthTestLegacy(pthTestPickle(true, ts, nil, nil), []string{"root"}, map[string][]byte{"root": root}, nil)
	got, _, err := readPthBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{3, 5, 4, 6}; len(got) != 1 || !reflect.DeepEqual(got[0].Data, want) {
		t.Fatalf("got %+v, want data %v", got, want)
	}

	// A view reaching past its root storage is refused.
	ts[0].view = []any{"v1", 8, 6}
	b = pthTestLegacy(pthTestPickle(true, ts, nil, nil), []string{"root"}, map[string][]byte{"root": root}, nil)
	if _, _, err := readPthBytes(b); err == nil || !strings.Contains(err.Error(), "storage view") {
		t.Fatalf("view past its storage: err = %v", err)
	}
}

func TestReadPthBadStrides(t *testing.T) {
	for _, tc := range []struct {
		name         string
		offset       int
		size, stride []int
	}{
		{"past the end", 0, []int{3, 3}, []int{3, 1}},
		{"offset past the end", 6, []int{1}, []int{1}},
		{"huge stride", 0, []int{2}, []int{1 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := []pthTestTensor{{name: "w", class: "FloatStorage", key: "0", storageNumel: 6, offset: tc.offset, size: tc.size, stride: tc.stride}}
			b := pthTestZip(t, "archive", pthTestPickle(false, ts, nil, nil), map[string][]byte{"0": f32Bytes(0, 1, 2, 3, 4, 5)})
			_, _, err := readPthBytes(b)
			if err == nil || !strings.Contains(err.Error(), "tensor w") {
				t.Fatalf("err = %v, want an error about tensor w", err)
			}
		})
	}
}

func TestReadPthNotACheckpoint(t *testing.T) {
	dir := t.TempDir()
	zipNoPkl := func() []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("photos/cat.jpg")
		w.Write([]byte("meow"))
		zw.Close()
		return buf.Bytes()
	}()
	tarLike := make([]byte, 600)
	copy(tarLike, "encoder.pth")
	copy(tarLike[257:], "ustar")
	listPkl := &pklBuilder{}
	listPkl.op(0x80, 2, ']', '.')
	dictPkl := &pklBuilder{}
	dictPkl.op(0x80, 2, '}', '.')
	zipList := pthTestZip(t, "archive", listPkl.Bytes(), nil)
	zipTensor := pthTestZip(t, "archive", []byte("\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00))\x89ccollections\nOrderedDict\n)RtR."), map[string][]byte{"0": f32Bytes(1)})
	legacyList := pthTestLegacy(listPkl.Bytes(), nil, nil, nil)
	zipHalf := pthTestZip(t, "archive", pthTestPickle(false, []pthTestTensor{{name: "w", class: "FloatStorage", key: "0", storageNumel: 4, size: []int{4}, stride: []int{1}}}, nil, nil),
		map[string][]byte{"0": f32Bytes(1, 2)})
	zipComplex := pthTestZip(t, "archive", pthTestPickle(false, []pthTestTensor{{name: "w", class: "ComplexFloatStorage", key: "0", storageNumel: 1, size: []int{1}, stride: []int{1}}}, nil, nil),
		map[string][]byte{"0": f32Bytes(1, 2)})
	for _, tc := range []struct {
		name    string
		content []byte
		want    []string
	}{
		{"text.pth", []byte("hello, this is not a model\n"), []string{"text.pth: not a PyTorch checkpoint (neither a zip nor a legacy pickle: starts with \"hello, this is n\")"}},
		{"empty.pth", nil, []string{"empty.pth: not a PyTorch checkpoint: the file is empty"}},
		{"other.zip", zipNoPkl, []string{"not a PyTorch checkpoint: a zip archive without a data.pkl"}},
		{"old.tar", tarLike, []string{"tar format", "save it again"}},
		{"plain.pkl", dictPkl.Bytes(), []string{"not a PyTorch checkpoint", "a pickle of a dict", "magic number"}},
		{"list_zip.pth", zipList, []string{"list_zip.pth: holds a list, want a dict of tensors"}},
		{"list_legacy.pth", legacyList, []string{"list_legacy.pth: holds a list, want a dict of tensors"}},
		{"tensor_zip.pth", zipTensor, []string{"holds a single tensor, want a dict of tensors"}},
		{"short.pth", zipHalf, []string{"holds 8 bytes, a storage of 4 float32 needs 16"}},
		{"complex.pth", zipComplex, []string{"torch.ComplexFloatStorage are not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := ReadPth(p)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, _, err := ReadPth(filepath.Join(dir, "absent.pth")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if _, _, err := ReadPth(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: err = %v", err)
	}
}

// Every truncation and every single-byte corruption of a checkpoint must give an
// error or a result, never a panic or a runaway allocation.
func TestReadPthCorruptNoPanic(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		good := handBuiltCheckpoint(t, legacy)
		for n := 0; n < len(good); n++ {
			if _, _, err := readPthBytes(good[:n]); err == nil {
				t.Fatalf("legacy=%v: truncated to %d of %d bytes: no error", legacy, n, len(good))
			}
		}
		for i := range good {
			for _, x := range []byte{0xff, 0x01, 0x80} {
				b := bytes.Clone(good)
				b[i] ^= x
				ts, _, err := readPthBytes(b)
				if err == nil {
					for _, nt := range ts {
						if nt.Shape.Len() != len(nt.Data) {
							t.Fatalf("legacy=%v, byte %d ^ %#x: %s has %d values for shape %v", legacy, i, x, nt.Name, len(nt.Data), nt.Shape)
						}
					}
				}
			}
		}
	}
}

func TestHalfToFloat32(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x3555, 0.333251953125}, {0x7bff, 65504},
		{0x0001, 1.0 / (1 << 24)}, {0x03ff, 1023.0 / (1 << 24)}, {0x0400, 1.0 / (1 << 14)},
		{0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	} {
		if got := halfToFloat32(tc.h); got != tc.want {
			t.Errorf("halfToFloat32(%#04x) = %g, want %g", tc.h, got, tc.want)
		}
	}
	if got := halfToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("halfToFloat32(0x8000) = %g, want -0", got)
	}
	if got := halfToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("halfToFloat32(0x7e00) = %g, want NaN", got)
	}
}

// jsonNormal turns a value into what encoding/json makes of it, so that Go extras and
// the JSON printed by Python compare with reflect.DeepEqual.
func jsonNormal(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// ---- against PyTorch ----

const pthTestPython = "/usr/bin/python3"

// pthTorchScript describes checkpoints the way torch.load sees them, re-saves them in
// the legacy format and writes the fixtures (dtypes, strides, views, wrong contents).
const pthTorchScript = `import collections, hashlib, json, os, pickle, struct, sys
import torch

def describe(path):
    """What ReadPth must return for a state dict: tensors and extras, in file order."""
    sd = torch.load(path, map_location="cpu")
    out = []
    for k, v in sd.items():
        if torch.is_tensor(v):
            c = v.detach().contiguous()
            e = {"name": k, "shape": list(c.shape)}
            if c.is_floating_point():
                f = c.float().contiguous()
                e["kind"] = "float"
                e["sha256"] = hashlib.sha256(f.numpy().tobytes()).hexdigest()
                flat = f.flatten()
                e["first"] = flat[:4].tolist()
                e["sum"] = float(flat.double().sum())
            else:
                e["kind"] = "int"
                e["dtype"] = str(c.dtype).replace("torch.", "")
                e["ints"] = [int(x) for x in c.flatten().tolist()]
        else:
            e = {"name": k, "kind": "extra", "value": v}
        out.append(e)
    return out

def cmd_describe(paths):
    print(json.dumps({os.path.basename(p): describe(p) for p in paths}))

def cmd_legacy(src, dst):
    os.makedirs(dst, exist_ok=True)
    for fn in sorted(os.listdir(src)):
        if fn.endswith(".pth"):
            sd = torch.load(os.path.join(src, fn))
            torch.save(sd, os.path.join(dst, fn), _use_new_zipfile_serialization=False)

def dtype_dict():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(4, 6, generator=g)
    shared = torch.randn(10, generator=g)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(2, 3, generator=g)
    sd["f64"] = torch.randn(3, generator=g, dtype=torch.float64)
    sd["f16"] = torch.randn(5, generator=g).half()
    sd["bf16"] = torch.randn(5, generator=g).bfloat16()
    sd["transposed"] = base.t()                 # strides (1, 6)
    sd["sliced"] = base[1:, 2:5]                # storage offset 8, strides (6, 1)
    sd["strided"] = base[::2, ::3]              # strides (12, 3)
    sd["expanded"] = torch.arange(3.0).expand(4, 3)  # stride 0
    sd["shared_a"] = shared[:4]
    sd["shared_b"] = shared[3:].view(7, 1)      # same storage, offset 3
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    sd["bn.num_batches_tracked"] = torch.tensor(123456789012, dtype=torch.int64)
    sd["i32"] = torch.tensor([[1, -2], [3, 4]], dtype=torch.int32)
    sd["mask"] = torch.tensor([True, False, True])
    sd["height"] = 192
    sd["width"] = 640
    sd["use_stereo"] = True
    sd["lr"] = 1e-4
    sd["name"] = "mono_640x192"
    sd["nothing"] = None
    sd["sizes"] = [1, 2, (3, 4)]
    sd["opts"] = {"scales": [0, 1, 2, 3], "pose": "separate_resnet"}
    return sd

def cmd_fixtures(out):
    os.makedirs(out, exist_ok=True)
    sd = dtype_dict()
    torch.save(sd, os.path.join(out, "dtypes_zip.pth"))
    torch.save(sd, os.path.join(out, "dtypes_legacy.pth"), _use_new_zipfile_serialization=False)
    small = {"w": torch.arange(6.0).view(2, 3), "b": torch.tensor([0.5])}
    torch.save(small, os.path.join(out, "small_zip.pth"))
    torch.save(small, os.path.join(out, "small_legacy.pth"), _use_new_zipfile_serialization=False)
    lin = torch.nn.Linear(2, 2)
    for leg in (False, True):
        sfx = "_legacy.pth" if leg else "_zip.pth"
        kw = {"_use_new_zipfile_serialization": not leg}
        torch.save([torch.zeros(1), 2], os.path.join(out, "list" + sfx), **kw)
        torch.save(torch.zeros(3), os.path.join(out, "tensor" + sfx), **kw)
        torch.save(lin, os.path.join(out, "module" + sfx), **kw)
        torch.save({"model": lin.state_dict(), "epoch": 3}, os.path.join(out, "wrapped" + sfx), **kw)
        torch.save({1: torch.zeros(1)}, os.path.join(out, "intkey" + sfx), **kw)
    with open(os.path.join(out, "plain.pkl"), "wb") as f:
        pickle.dump({"a": 1}, f, protocol=2)
    torch.jit.save(torch.jit.script(lin), os.path.join(out, "script.pt"))
    write_view_file(os.path.join(out, "view_legacy.pth"))

class _Root:
    pass

class _View:
    pass

def write_view_file(path):
    """A legacy file whose tensor sits on a storage view, as torch <= 0.4 could write:
    persistent id ('storage', FloatStorage, root, 'cpu', 10, (view, 2, 6))."""
    root, view = _Root(), _View()
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is root:
                return ("storage", torch.FloatStorage, "root", "cpu", 10, None)
            if obj is view:
                return ("storage", torch.FloatStorage, "root", "cpu", 10, ("view1", 2, 6))
            return None
    class T:
        def __init__(self, st, off, size, stride):
            self.a = (st, off, size, stride, False, collections.OrderedDict())
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, self.a)
    sd = collections.OrderedDict()
    sd["whole"] = T(root, 0, (10,), (1,))
    sd["view"] = T(view, 1, (2, 2), (1, 2))  # elements 3, 5 / 4, 6 of the root
    with open(path, "wb") as f:
        pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        P(f, protocol=2).dump(sd)
        pickle.dump(["root"], f, protocol=2)
        f.write(struct.pack("<q", 10))
        f.write(struct.pack("<10f", *[float(i) for i in range(10)]))

def cmd_stereo(src, dst):
    """A stereo-only model folder: encoder.pth says use_stereo, no pose files."""
    os.makedirs(dst, exist_ok=True)
    enc = torch.load(os.path.join(src, "encoder.pth"))
    enc["use_stereo"] = True
    torch.save(enc, os.path.join(dst, "encoder.pth"))
    torch.save(torch.load(os.path.join(src, "depth.pth")), os.path.join(dst, "depth.pth"))

if __name__ == "__main__":
    c, args = sys.argv[1], sys.argv[2:]
    {"describe": lambda: cmd_describe(args), "legacy": lambda: cmd_legacy(*args),
     "fixtures": lambda: cmd_fixtures(*args), "stereo": lambda: cmd_stereo(*args)}[c]()
`

// needTorch writes the helper script and returns its path, or skips the test when
// /usr/bin/python3 cannot import torch.
func needTorch(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command(pthTestPython, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("no PyTorch to compare with: %s cannot import torch (%v: %s); install Debian's python3-torch (make test-deps)",
			pthTestPython, err, strings.TrimSpace(string(out)))
	}
	p := filepath.Join(t.TempDir(), "pth_fixtures.py")
	if err := os.WriteFile(p, []byte(pthTorchScript), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runTorch(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(pthTestPython, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", pthTestPython, args, err, stderr.String())
	}
	return out
}

// torchEntry is one state-dict entry as torch.load sees it (pthTorchScript's describe).
type torchEntry struct {
	Name   string    `json:"name"`
	Kind   string    `json:"kind"` // float, int or extra
	Shape  []int     `json:"shape"`
	SHA256 string    `json:"sha256"` // of the contiguous float32 little-endian bytes
	First  []float64 `json:"first"`
	Sum    float64   `json:"sum"`
	DType  string    `json:"dtype"`
	Ints   []int64   `json:"ints"`
	Value  any       `json:"value"`
}

func describeWithTorch(t *testing.T, script string, paths ...string) map[string][]torchEntry {
	t.Helper()
	var out map[string][]torchEntry
	if err := json.Unmarshal(runTorch(t, append([]string{script, "describe"}, paths...)...), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkAgainstTorch compares ReadPth's result with torch.load's, entry by entry: float
// tensors in file order, bit for bit (SHA-256 of the float32 bytes), with their first
// values and sum for a readable failure; integer tensors and extras in extras.
func checkAgainstTorch(t *testing.T, file string, ts []NamedTensor, extras map[string]any, want []torchEntry) {
	t.Helper()
	var wantFloats []torchEntry
	nExtras := 0
	for _, w := range want {
		switch w.Kind {
		case "float":
			wantFloats = append(wantFloats, w)
			continue
		case "int":
			it, ok := extras[w.Name].(IntTensor)
			if !ok {
				t.Errorf("%s: %s: extras hold %#v, want an IntTensor", file, w.Name, extras[w.Name])
			} else if it.DType != w.DType || !it.Shape.Equal(w.Shape) || !reflect.DeepEqual(it.Data, w.Ints) {
				t.Errorf("%s: %s = %+v, torch has %s %v %v", file, w.Name, it, w.DType, w.Shape, w.Ints)
			}
		case "extra":
			if got := jsonNormal(t, extras[w.Name]); !reflect.DeepEqual(got, jsonNormal(t, w.Value)) {
				t.Errorf("%s: extra %s = %#v, torch has %#v", file, w.Name, extras[w.Name], w.Value)
			}
		}
		nExtras++
	}
	if len(extras) != nExtras {
		t.Errorf("%s: %d extras, torch has %d non-float entries: %v", file, len(extras), nExtras, extras)
	}
	if len(ts) != len(wantFloats) {
		t.Fatalf("%s: %d tensors, torch has %d", file, len(ts), len(wantFloats))
	}
	for i, w := range wantFloats {
		g := ts[i]
		if g.Name != w.Name || !g.Shape.Equal(w.Shape) {
			t.Errorf("%s: tensor %d is %s %v, torch has %s %v", file, i, g.Name, g.Shape, w.Name, w.Shape)
			continue
		}
		h := sha256.Sum256(f32Bytes(g.Data...))
		if hex.EncodeToString(h[:]) == w.SHA256 {
			continue
		}
		var sum float64
		for _, v := range g.Data {
			sum += float64(v)
		}
		t.Errorf("%s: %s differs from torch: first %v sum %g, torch first %v sum %g", file, g.Name, g.Data[:min(len(g.Data), 4)], sum, w.First, w.Sum)
	}
}

func TestReadPthTorchFixtures(t *testing.T) {
	script := needTorch(t)
	dir := t.TempDir()
	runTorch(t, script, "fixtures", dir)
	files := []string{"dtypes_zip.pth", "dtypes_legacy.pth", "view_legacy.pth", "small_zip.pth", "small_legacy.pth"}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f)
	}
	want := describeWithTorch(t, script, paths...)
	results := map[string][]NamedTensor{}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			ts, extras, err := ReadPth(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			results[f] = ts
			checkAgainstTorch(t, f, ts, extras, want[f])
		})
	}
	if !reflect.DeepEqual(results["dtypes_zip.pth"], results["dtypes_legacy.pth"]) {
		t.Error("the zip and legacy files of one state dict read differently")
	}

	for _, tc := range []struct{ file, want string }{
		{"list_zip.pth", "holds a list, want a dict of tensors"},
		{"list_legacy.pth", "holds a list, want a dict of tensors"},
		{"tensor_zip.pth", "holds a single tensor"},
		{"tensor_legacy.pth", "holds a single tensor"},
		{"module_zip.pth", "holds a pickled torch.nn.modules.linear.Linear object"},
		{"module_legacy.pth", "holds a pickled torch.nn.modules.linear.Linear module"},
		{"wrapped_zip.pth", "entry model: holds tensors nested in a container"},
		{"wrapped_legacy.pth", "entry model: holds tensors nested in a container"},
		{"intkey_zip.pth", "holds a dict with a int key (1)"},
		{"intkey_legacy.pth", "holds a dict with a int key (1)"},
		{"plain.pkl", "not torch.save's magic number"},
		{"script.pt", "a TorchScript archive"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, _, err := ReadPth(filepath.Join(dir, tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
				t.Fatalf("err = %v, want one naming the file and saying %q", err, tc.want)
			}
		})
	}

	// Truncations of a real legacy file are errors, never panics.
	good, err := os.ReadFile(filepath.Join(dir, "small_legacy.pth"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(good); n++ {
		if _, _, err := readPthBytes(good[:n]); err == nil {
			t.Fatalf("small_legacy.pth truncated to %d of %d bytes: no error", n, len(good))
		}
	}
}

// TestReadPthMonodepth2Reference reads the four checkpoints the PyTorch reference
// writes (zip format), the same state dicts re-saved in the legacy format of the
// released Monodepth2 models, and the folder as a whole.
func TestReadPthMonodepth2Reference(t *testing.T) {
	script := needTorch(t)
	ref := pthReferenceScript(t)
	dir := t.TempDir()
	zipDir, legacyDir := filepath.Join(dir, "zip"), filepath.Join(dir, "legacy")
	if out, err := exec.Command(pthTestPython, ref, "parity", "--out", zipDir).CombinedOutput(); err != nil {
		t.Fatalf("reference parity: %v\n%s", err, out)
	}
	runTorch(t, script, "legacy", zipDir, legacyDir)
	var paths []string
	for _, f := range Monodepth2Files {
		paths = append(paths, filepath.Join(zipDir, f))
	}
	want := describeWithTorch(t, script, paths...)

	for _, d := range []string{zipDir, legacyDir} {
		t.Run(filepath.Base(d), func(t *testing.T) {
			ck, err := ReadMonodepth2Dir(d)
			if err != nil {
				t.Fatal(err)
			}
			if ck.Height != 64 || ck.Width != 192 || ck.UseStereo {
				t.Errorf("height %d width %d use_stereo %v, want 64 192 false (the reference's defaults)", ck.Height, ck.Width, ck.UseStereo)
			}
			for i, ts := range [][]NamedTensor{ck.Encoder, ck.Depth, ck.PoseEncoder, ck.Pose} {
				f := Monodepth2Files[i]
				_, extras, err := ReadPth(filepath.Join(d, f))
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstTorch(t, f, ts, extras, want[f])
			}
			// The names are those of the released checkpoints.
			if ck.Encoder[0].Name != "encoder.conv1.weight" || !ck.Encoder[0].Shape.Equal(tensor.Shape{64, 3, 7, 7}) {
				t.Errorf("first encoder tensor %s %v, want encoder.conv1.weight [64 3 7 7]", ck.Encoder[0].Name, ck.Encoder[0].Shape)
			}
			// CheckParams with Monodepth2IgnoredParams accepts the file against the
			// shapes of its used parameters (fc and the BN counters left out).
			wantShapes := map[string]tensor.Shape{}
			for _, e := range want["encoder.pth"] {
				if e.Kind == "float" && !strings.Contains(e.Name, ".fc.") && !strings.HasSuffix(e.Name, "num_batches_tracked") {
					wantShapes[e.Name] = e.Shape
				}
			}
			if err := CheckParams("encoder.pth", ck.Encoder, wantShapes, Monodepth2IgnoredParams...); err != nil {
				t.Error(err)
			}
			if err := CheckParams("encoder.pth", ck.Encoder, wantShapes); err == nil || !strings.Contains(err.Error(), "encoder.fc.bias") {
				t.Errorf("without ignore patterns: err = %v, want encoder.fc.* reported as unexpected", err)
			}
		})
	}

	// A mono model lacking pose.pth is an error naming it; a stereo model may lack both
	// pose files (Monodepth2 trains no pose network for stereo-only models).
	monoDir := filepath.Join(dir, "mono")
	stereoDir := filepath.Join(dir, "stereo")
	runTorch(t, script, "stereo", zipDir, stereoDir)
	os.Mkdir(monoDir, 0o755)
	for _, f := range Monodepth2Files[:3] {
		os.Link(filepath.Join(zipDir, f), filepath.Join(monoDir, f))
	}
	if _, err := ReadMonodepth2Dir(monoDir); err == nil || !strings.Contains(err.Error(), "no pose.pth") {
		t.Errorf("mono folder without pose.pth: err = %v", err)
	}
	ck, err := ReadMonodepth2Dir(stereoDir)
	if err != nil {
		t.Fatalf("stereo folder without pose files: %v", err)
	}
	if !ck.UseStereo || ck.Pose != nil || ck.PoseEncoder != nil || len(ck.Depth) == 0 {
		t.Errorf("stereo folder: use_stereo %v, %d pose and %d pose-encoder tensors, %d depth", ck.UseStereo, len(ck.Pose), len(ck.PoseEncoder), len(ck.Depth))
	}
}

// pthReferenceScript finds the PyTorch reference: $EDGEDEPTH_REFERENCE, the shared copy
// beside the repository, or the trainer's testdata copy.
func pthReferenceScript(t *testing.T) string {
	for _, p := range []string{os.Getenv("EDGEDEPTH_REFERENCE"), "../../shared/reference/monodepth2_ref.py", "../trainer/testdata/monodepth2_ref.py"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no monodepth2_ref.py: set EDGEDEPTH_REFERENCE or keep ../shared/reference beside the repository")
	return ""
}
