package nn

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"

	"github.com/edgedepth/edgedepth/tensor"
)

// This file reads PyTorch state dicts (torch.save(model.state_dict(), path)) without
// Python. Two container formats exist:
//
//   - zip (torch >= 1.6, the default since): PREFIX/data.pkl is a pickle of the dict in
//     which each storage is a persistent id ('storage', FloatStorage, key, location,
//     numel) whose bytes are the zip record PREFIX/data/KEY. PREFIX is "archive" in
//     recent versions and the file's base name in older ones.
//   - legacy (torch 0.4 to 1.5, and _use_new_zipfile_serialization=False): a stream of
//     pickles: magic number, protocol version 1001, sys info, the dict (persistent ids
//     ('storage', FloatStorage, root key, location, numel, view metadata)), the list of
//     storage keys, then for each key an int64 element count and the raw bytes. The
//     released Monodepth2 checkpoints (2019, torch 0.4.1) are in this format.
//
// gopickle's pickle package does the unpickling; the torch layer is ours rather than
// gopickle/pytorch's, because that one panics on legacy storage views and tar files,
// does not handle _rebuild_parameter, reads storages with single Read calls that may
// return short, allocates whatever size a file claims before reading, and only reads
// from a file name.

// IntTensor is an integer or boolean tensor of a .pth file. ReadPth returns these in
// extras, not among the float32 tensors: in a state dict they are bookkeeping (BatchNorm's
// num_batches_tracked counter), not weights, and an int64 count does not survive a trip
// through float32 beyond 2^24.
type IntTensor struct {
	DType string // "int64", "int32", "int16", "int8", "uint8" or "bool"
	Shape tensor.Shape
	Data  []int64
}

// PyObject stands in extras for a Python object that is neither a tensor nor a plain
// value (for example an argparse.Namespace saved next to the weights).
type PyObject struct {
	Class string // module.name
}

// ReadPth reads a PyTorch state dict saved with torch.save, in the zip format or the
// legacy one. Floating-point tensors (float32, float64, float16, bfloat16) are returned
// in file order as float32, densely copied whatever their strides and storage offset.
// Everything else goes into extras under its key: integer and bool tensors as
// IntTensor, Python ints as int (*big.Int beyond 64 bits), floats as float64, bools,
// strings, None as nil, lists and tuples as []any, dicts with string keys as
// map[string]any, other objects as PyObject.
func ReadPth(path string) (tensors []NamedTensor, extras map[string]any, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read PyTorch checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read PyTorch checkpoint: %w", err)
	}
	if st.IsDir() {
		return nil, nil, fmt.Errorf("%s: is a directory, want a .pth file", path)
	}
	tensors, extras, err = readPth(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return tensors, extras, nil
}

// readPth reads a checkpoint of the given size from r.
func readPth(r io.ReaderAt, size int64) (tensors []NamedTensor, extras map[string]any, err error) {
	// gopickle indexes slices taken from the stream without always checking their
	// length; a corrupt file must give an error, not bring down the daemon.
	defer func() {
		if p := recover(); p != nil {
			tensors, extras = nil, nil
			err = fmt.Errorf("corrupt PyTorch checkpoint (the pickle reader failed: %v)", p)
		}
	}()
	head := make([]byte, 512)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	head = head[:n]
	var obj any
	switch {
	case n == 0:
		return nil, nil, errors.New("not a PyTorch checkpoint: the file is empty")
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		obj, err = loadPthZip(r, size)
	case head[0] == 0x80: // pickle PROTO opcode: the legacy format begins with a pickle
		obj, err = loadPthLegacy(r, size)
	case n >= 262 && string(head[257:262]) == "ustar":
		return nil, nil, errors.New("a PyTorch checkpoint in the tar format of torch < 0.1.10, which ReadPth does not read: load and save it again with a newer torch")
	default:
		return nil, nil, fmt.Errorf("not a PyTorch checkpoint (neither a zip nor a legacy pickle: starts with %q)", head[:min(n, 16)])
	}
	if err != nil {
		return nil, nil, err
	}
	return stateDict(obj)
}

// ---- storages and tensors as the unpickler builds them ----

// pthDType describes one torch storage class.
type pthDType struct {
	name  string
	size  int  // bytes per element
	float bool // converted to float32; otherwise to int64
}

var pthStorageClasses = map[string]pthDType{
	"FloatStorage":    {"float32", 4, true},
	"DoubleStorage":   {"float64", 8, true},
	"HalfStorage":     {"float16", 2, true},
	"BFloat16Storage": {"bfloat16", 2, true},
	"LongStorage":     {"int64", 8, false},
	"IntStorage":      {"int32", 4, false},
	"ShortStorage":    {"int16", 2, false},
	"CharStorage":     {"int8", 1, false},
	"ByteStorage":     {"uint8", 1, false},
	"BoolStorage":     {"bool", 1, false},
}

// storageClass is the value of a GLOBAL such as torch.FloatStorage.
type storageClass struct {
	class string
	dt    pthDType
}

// pthStorage is the flat memory a tensor views. In legacy files a storage may itself
// be a view (root, offset) into another storage, and its bytes are read after the
// pickle, so tensors keep storage pointers and resolve them at the end.
type pthStorage struct {
	dt     pthDType
	numel  int
	data   []byte      // numel*dt.size bytes once read; nil for views
	root   *pthStorage // legacy storage view: elements [offset, offset+numel) of root
	offset int
}

func (s *pthStorage) bytes() ([]byte, error) {
	if s.root == nil {
		if s.data == nil && s.numel > 0 {
			return nil, errors.New("corrupt PyTorch checkpoint: a storage's data was never stored in the file")
		}
		return s.data, nil
	}
	b, err := s.root.bytes()
	if err != nil {
		return nil, err
	}
	lo, hi := s.offset*s.dt.size, (s.offset+s.numel)*s.dt.size
	if s.offset < 0 || s.numel < 0 || hi > len(b) || lo > hi {
		return nil, fmt.Errorf("corrupt PyTorch checkpoint: storage view [%d, %d) outside its storage of %d elements", s.offset, s.offset+s.numel, len(b)/s.dt.size)
	}
	return b[lo:hi], nil
}

// pthTensor is a tensor as torch._utils._rebuild_tensor_v2 describes it.
type pthTensor struct {
	st     *pthStorage
	offset int
	size   []int
	stride []int
}

// pyFunc is a Python callable found by name in the pickle.
type pyFunc struct {
	name string
	fn   func(args []any) (any, error)
}

func (f *pyFunc) Call(args ...any) (any, error) { return f.fn(args) }

// pyClass stands for any class the reader does not model. Building one succeeds (so a
// pickled whole model loads far enough to say what it is); stateDict then reports it.
type pyClass struct{ module, name string }

func (c *pyClass) Call(args ...any) (any, error)  { return &pyInstance{class: c}, nil }
func (c *pyClass) PyNew(args ...any) (any, error) { return &pyInstance{class: c}, nil }

type pyInstance struct{ class *pyClass }

func (o *pyInstance) PySetState(any) error { return nil }

func (o *pyInstance) String() string { return o.class.module + "." + o.class.name }

func findPthClass(module, name string) (any, error) {
	full := module + "." + name
	switch full {
	case "torch._utils._rebuild_tensor_v2":
		return &pyFunc{full, rebuildTensorV2}, nil
	case "torch._utils._rebuild_tensor": // torch <= 0.3
		return &pyFunc{full, rebuildTensorV1}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		// An nn.Parameter: (data, requires_grad, backward_hooks[, state]); only data matters.
		return &pyFunc{full, func(args []any) (any, error) {
			if len(args) < 3 {
				return nil, fmt.Errorf("%s: %d arguments, want at least 3", full, len(args))
			}
			t, ok := args[0].(*pthTensor)
			if !ok {
				return nil, fmt.Errorf("%s: first argument is a %s, want a tensor", full, pyTypeName(args[0]))
			}
			return t, nil
		}}, nil
	case "torch._tensor._rebuild_from_type_v2", "torch._utils._rebuild_from_type_v2":
		// A tensor subclass: (func, type, args, state); rebuild the plain tensor.
		return &pyFunc{full, func(args []any) (any, error) {
			if len(args) < 3 {
				return nil, fmt.Errorf("%s: %d arguments, want at least 3", full, len(args))
			}
			fn, ok1 := args[0].(types.Callable)
			inner, ok2 := args[2].(*types.Tuple)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: unexpected arguments", full)
			}
			return fn.Call(*inner...)
		}}, nil
	case "torch.Size":
		return &pyFunc{full, func(args []any) (any, error) {
			if len(args) == 1 {
				if t, ok := args[0].(*types.Tuple); ok {
					return t, nil
				}
			}
			return nil, fmt.Errorf("torch.Size: unexpected arguments %v", args)
		}}, nil
	}
	if module == "torch" {
		if dt, ok := pthStorageClasses[name]; ok {
			return &storageClass{class: full, dt: dt}, nil
		}
		if strings.HasSuffix(name, "Storage") {
			return nil, fmt.Errorf("tensors stored as %s are not supported: save float tensors (float32, float64, float16 or bfloat16)", full)
		}
	}
	if module == "torch._utils" && strings.HasPrefix(name, "_rebuild_") {
		return nil, fmt.Errorf("holds tensors rebuilt by %s (quantized, sparse, meta or otherwise not dense): ReadPth reads dense tensors only; convert them with .to_dense()/.dequantize() before saving", full)
	}
	return &pyClass{module, name}, nil
}

// rebuildTensorV2 is torch._utils._rebuild_tensor_v2(storage, storage_offset, size,
// stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensorV2(args []any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("torch._utils._rebuild_tensor_v2: %d arguments, want 6", len(args))
	}
	return rebuildTensor(args[:4])
}

// rebuildTensorV1 is torch._utils._rebuild_tensor(storage, storage_offset, size, stride).
func rebuildTensorV1(args []any) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("torch._utils._rebuild_tensor: %d arguments, want 4", len(args))
	}
	return rebuildTensor(args)
}

func rebuildTensor(args []any) (any, error) {
	st, ok := args[0].(*pthStorage)
	if !ok {
		return nil, fmt.Errorf("tensor storage is a %s, want a storage", pyTypeName(args[0]))
	}
	off, ok := pyInt(args[1])
	if !ok || off < 0 {
		return nil, fmt.Errorf("tensor storage offset is %v, want a non-negative int", args[1])
	}
	size, err := intTuple("size", args[2])
	if err != nil {
		return nil, err
	}
	stride, err := intTuple("stride", args[3])
	if err != nil {
		return nil, err
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("tensor size %v and stride %v differ in length", size, stride)
	}
	return &pthTensor{st: st, offset: off, size: size, stride: stride}, nil
}

func intTuple(what string, v any) ([]int, error) {
	var items []any
	switch t := v.(type) {
	case *types.Tuple:
		items = *t
	case *types.List:
		items = *t
	default:
		return nil, fmt.Errorf("tensor %s is a %s, want a tuple of ints", what, pyTypeName(v))
	}
	out := make([]int, len(items))
	for i, it := range items {
		n, ok := pyInt(it)
		if !ok || n < 0 {
			return nil, fmt.Errorf("tensor %s %v: want non-negative ints", what, items)
		}
		out[i] = n
	}
	return out, nil
}

func pyInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case *big.Int:
		if n.IsInt64() && n.Int64() >= math.MinInt && n.Int64() <= math.MaxInt {
			return int(n.Int64()), true
		}
	}
	return 0, false
}

// newStorage checks a persistent id's class and element count.
func newStorage(class any, numel any) (*pthStorage, error) {
	sc, ok := class.(*storageClass)
	if !ok {
		return nil, fmt.Errorf("storage type is a %s, want a torch storage class", pyTypeName(class))
	}
	n, ok := pyInt(numel)
	if !ok || n < 0 || n > math.MaxInt64/16 {
		return nil, fmt.Errorf("storage size is %v, want a non-negative int", numel)
	}
	return &pthStorage{dt: sc.dt, numel: n}, nil
}

// ---- the zip format ----

func loadPthZip(r io.ReaderAt, size int64) (any, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a PyTorch checkpoint: a broken zip archive (%v)", err)
	}
	records := make(map[string]*zip.File, len(zr.File))
	prefix := ""
	for _, f := range zr.File {
		records[f.Name] = f
		if dir, base, ok := strings.Cut(f.Name, "/"); ok && base == "data.pkl" {
			prefix = dir
		}
	}
	if prefix == "" {
		return nil, errors.New("not a PyTorch checkpoint: a zip archive without a data.pkl record")
	}
	if _, ok := records[prefix+"/constants.pkl"]; ok {
		return nil, errors.New("a TorchScript archive (torch.jit.save), not a state dict: save the weights with torch.save(model.state_dict(), path)")
	}
	if f, ok := records[prefix+"/byteorder"]; ok {
		b, err := readZipRecord(f, 16, size)
		if err != nil {
			return nil, err
		}
		if string(b) != "little" {
			return nil, fmt.Errorf("tensors stored in %q byte order: only little-endian checkpoints are supported", b)
		}
	}
	pkl, err := readZipRecord(records[prefix+"/data.pkl"], 1<<30, size)
	if err != nil {
		return nil, err
	}
	if pkl, err = readPickleAt(bytes.NewReader(pkl), 0, int64(len(pkl))); err != nil {
		return nil, fmt.Errorf("corrupt PyTorch checkpoint: %s/data.pkl: %w", prefix, err)
	}
	storages := map[string]*pthStorage{}
	u := pickle.NewUnpickler(bytes.NewReader(pkl))
	u.FindClass = findPthClass
	u.PersistentLoad = func(id any) (any, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() < 5 || (*t)[0] != "storage" {
			return nil, fmt.Errorf("unknown persistent id %v in data.pkl, want ('storage', type, key, location, size)", id)
		}
		key, ok := (*t)[2].(string)
		if !ok {
			return nil, fmt.Errorf("storage key is a %s, want a str", pyTypeName((*t)[2]))
		}
		if st, ok := storages[key]; ok {
			return st, nil
		}
		st, err := newStorage((*t)[1], (*t)[4])
		if err != nil {
			return nil, err
		}
		f, ok := records[prefix+"/data/"+key]
		if !ok {
			return nil, fmt.Errorf("corrupt PyTorch checkpoint: no record %s/data/%s for a storage", prefix, key)
		}
		need := uint64(st.numel) * uint64(st.dt.size)
		if f.UncompressedSize64 < need {
			return nil, fmt.Errorf("corrupt PyTorch checkpoint: record %s holds %d bytes, a storage of %d %s needs %d",
				f.Name, f.UncompressedSize64, st.numel, st.dt.name, need)
		}
		st.data, err = readZipRecord(f, need, size)
		if err != nil {
			return nil, err
		}
		if uint64(len(st.data)) < need {
			return nil, fmt.Errorf("corrupt PyTorch checkpoint: record %s is shorter than its storage", f.Name)
		}
		st.data = st.data[:need]
		storages[key] = st
		return st, nil
	}
	obj, err := u.Load()
	if err != nil {
		return nil, fmt.Errorf("corrupt PyTorch checkpoint: %s/data.pkl: %w", prefix, err)
	}
	return obj, nil
}

// readZipRecord reads at most limit bytes of a zip record.
// The sizes are checked against the archive before the buffer is allocated, so that a
// corrupt header cannot make the reader allocate gigabytes (deflate expands at most
// 1032 times).
func readZipRecord(f *zip.File, limit uint64, archiveSize int64) ([]byte, error) {
	n := min(f.UncompressedSize64, limit)
	if (f.Method == zip.Store && n > uint64(archiveSize)) || (f.Method != zip.Store && n/1100 > f.CompressedSize64) {
		return nil, fmt.Errorf("corrupt PyTorch checkpoint: record %s claims %d bytes in an archive of %d", f.Name, f.UncompressedSize64, archiveSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("corrupt PyTorch checkpoint: %s: %w", f.Name, err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("corrupt PyTorch checkpoint: %s: %w", f.Name, err)
	}
	return buf, nil
}

// ---- the legacy format ----

// legacyMagic is torch.serialization.MAGIC_NUMBER.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

func loadPthLegacy(r io.ReaderAt, size int64) (any, error) {
	var off int64
	// next unpickles the pickle at off, with the class lookup and persistent ids
	// given, and moves off past it.
	next := func(what string, setup func(u *pickle.Unpickler)) (any, error) {
		pkl, err := readPickleAt(r, off, size)
		if err != nil {
			return nil, fmt.Errorf("corrupt legacy PyTorch checkpoint: %s: %w", what, err)
		}
		off += int64(len(pkl))
		u := pickle.NewUnpickler(bytes.NewReader(pkl))
		if setup != nil {
			setup(&u)
		}
		v, err := u.Load()
		if err != nil {
			return nil, fmt.Errorf("corrupt legacy PyTorch checkpoint: %s: %w", what, err)
		}
		return v, nil
	}
	magic, err := next("magic number", nil)
	if err != nil {
		return nil, fmt.Errorf("not a PyTorch checkpoint (it starts like a pickle, but: %v)", err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("not a PyTorch checkpoint: a pickle of a %s, not torch.save's magic number (a plain pickle.dump file?)", pyTypeName(magic))
	}
	version, err := next("protocol version", nil)
	if err != nil {
		return nil, err
	}
	if v, ok := pyInt(version); !ok || v != 1001 {
		return nil, fmt.Errorf("legacy PyTorch checkpoint of protocol version %v: only 1001 is known", version)
	}
	sysInfo, err := next("sys info", nil)
	if err != nil {
		return nil, err
	}
	if d, ok := sysInfo.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le != true {
			return nil, errors.New("legacy PyTorch checkpoint written on a big-endian machine: only little-endian checkpoints are supported")
		}
	}

	storages := map[string]*pthStorage{}
	persistentLoad := func(id any) (any, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() < 1 {
			return nil, fmt.Errorf("unknown persistent id %v", id)
		}
		switch (*t)[0] {
		case "module":
			// A whole pickled nn.Module (its source code rides along): not a state dict.
			if t.Len() >= 2 {
				if c, ok := (*t)[1].(*pyClass); ok {
					return nil, fmt.Errorf("holds a pickled %s.%s module (torch.save(model)), want a state dict: save model.state_dict() instead", c.module, c.name)
				}
			}
			return nil, errors.New("holds a pickled module (torch.save(model)), want a state dict: save model.state_dict() instead")
		case "storage":
		default:
			return nil, fmt.Errorf("unknown persistent id %v", id)
		}
		if t.Len() < 6 {
			return nil, fmt.Errorf("storage persistent id %v: want ('storage', type, key, location, size, view)", id)
		}
		key, ok := (*t)[2].(string)
		if !ok {
			return nil, fmt.Errorf("storage key is a %s, want a str", pyTypeName((*t)[2]))
		}
		st, ok := storages[key]
		if !ok {
			var err error
			if st, err = newStorage((*t)[1], (*t)[4]); err != nil {
				return nil, err
			}
			storages[key] = st
		}
		view := (*t)[5]
		if view == nil {
			return st, nil
		}
		// A view of part of a storage: (view_key, offset, view_size), as torch <= 0.4
		// wrote for storages sliced from a larger one.
		vt, ok := view.(*types.Tuple)
		if !ok || vt.Len() != 3 {
			return nil, fmt.Errorf("storage view %v: want (key, offset, size)", view)
		}
		vkey, ok1 := (*vt)[0].(string)
		voff, ok2 := pyInt((*vt)[1])
		vsize, ok3 := pyInt((*vt)[2])
		if !ok1 || !ok2 || !ok3 || voff < 0 || vsize < 0 || voff > st.numel || vsize > st.numel-voff {
			return nil, fmt.Errorf("corrupt legacy PyTorch checkpoint: storage view %v of a storage of %d elements", view, st.numel)
		}
		if v, ok := storages[vkey]; ok {
			return v, nil
		}
		v := &pthStorage{dt: st.dt, numel: vsize, root: st, offset: voff}
		storages[vkey] = v
		return v, nil
	}
	obj, err := next("state dict", func(u *pickle.Unpickler) {
		u.FindClass = findPthClass
		u.PersistentLoad = persistentLoad
	})
	if err != nil {
		return nil, err
	}
	keysObj, err := next("storage keys", nil)
	if err != nil {
		return nil, err
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, fmt.Errorf("corrupt legacy PyTorch checkpoint: storage keys are a %s, want a list", pyTypeName(keysObj))
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, off, size-off), 1<<16)
	left := size - off
	var hdr [8]byte
	for _, k := range *keys {
		key, _ := k.(string)
		st, ok := storages[key]
		if !ok || st.root != nil {
			return nil, fmt.Errorf("corrupt legacy PyTorch checkpoint: data for unknown storage %v", k)
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil, fmt.Errorf("truncated legacy PyTorch checkpoint: it ends before storage %s (%w)", key, err)
		}
		left -= 8
		n := binary.LittleEndian.Uint64(hdr[:])
		if n != uint64(st.numel) {
			return nil, fmt.Errorf("corrupt legacy PyTorch checkpoint: storage %s has %d elements in the data, %d in the pickle", key, n, st.numel)
		}
		need := int64(st.numel) * int64(st.dt.size)
		if need > left {
			return nil, fmt.Errorf("truncated legacy PyTorch checkpoint: storage %s needs %d bytes, %d are left", key, need, left)
		}
		st.data = make([]byte, need)
		if _, err := io.ReadFull(br, st.data); err != nil {
			return nil, fmt.Errorf("truncated legacy PyTorch checkpoint: storage %s: %w", key, err)
		}
		left -= need
	}
	return obj, nil
}

// ---- pickle framing ----

// readPickleAt returns the bytes of the pickle that starts at off. It walks the opcodes
// without building anything and checks every length argument against what is left of
// the file first: gopickle allocates the length a string or frame claims before reading
// it, so a corrupt length would otherwise cost gigabytes. It also tells where the
// pickle ends, which the legacy format needs to find the next one.
func readPickleAt(r io.ReaderAt, off, size int64) ([]byte, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, off, size-off), 4096)
	left := size - off
	var pos int64
	take := func(n int64) ([]byte, error) {
		if n > left-pos {
			return nil, fmt.Errorf("pickle claims %d bytes at offset %d, only %d are left", n, off+pos, left-pos)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, err
		}
		pos += n
		return b, nil
	}
	skip := func(n uint64) error {
		if n > uint64(left-pos) {
			return fmt.Errorf("pickle claims %d bytes at offset %d, only %d are left", n, off+pos, left-pos)
		}
		if _, err := br.Discard(int(n)); err != nil {
			return err
		}
		pos += int64(n)
		return nil
	}
	line := func() error {
		for {
			b, err := br.ReadByte()
			if err != nil {
				return fmt.Errorf("pickle ends inside a text argument: %w", err)
			}
			pos++
			if b == '\n' {
				return nil
			}
		}
	}
	// counted reads an n-byte little-endian length and skips that many bytes.
	counted := func(n int64) error {
		b, err := take(n)
		if err != nil {
			return err
		}
		var l uint64
		for i := len(b) - 1; i >= 0; i-- {
			l = l<<8 | uint64(b[i])
		}
		return skip(l)
	}
	for {
		op, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("pickle ends without a STOP opcode: %w", err)
		}
		pos++
		switch op {
		case '.': // STOP
			b := make([]byte, pos)
			if _, err := r.ReadAt(b, off); err != nil {
				return nil, err
			}
			return b, nil
		case '(', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', ')', 'u',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98:
		case 'K', 'h', 'q', 0x80, 0x82: // one-byte argument
			err = skip(1)
		case 'M', 0x83:
			err = skip(2)
		case 'J', 'j', 'r', 0x84:
			err = skip(4)
		case 'G':
			err = skip(8)
		case 0x95: // FRAME: an 8-byte length; the framed opcodes follow and are walked
			var b []byte
			if b, err = take(8); err == nil && binary.LittleEndian.Uint64(b) > uint64(left-pos) {
				err = fmt.Errorf("pickle frame of %d bytes, only %d are left", binary.LittleEndian.Uint64(b), left-pos)
			}
		case 'F', 'I', 'L', 'P', 'S', 'V', 'g', 'p':
			err = line()
		case 'c', 'i':
			if err = line(); err == nil {
				err = line()
			}
		case 'U', 'C', 0x8c, 0x8a: // one-byte length
			err = counted(1)
		case 'T', 'X', 'B', 0x8b: // four-byte length
			err = counted(4)
		case 0x8d, 0x8e, 0x96: // eight-byte length
			err = counted(8)
		default:
			return nil, fmt.Errorf("unknown pickle opcode %#x at offset %d", op, off+pos-1)
		}
		if err != nil {
			return nil, err
		}
	}
}

// ---- from the unpickled object to tensors and extras ----

func stateDict(obj any) ([]NamedTensor, map[string]any, error) {
	var entries []types.DictEntry
	switch d := obj.(type) {
	case *types.Dict:
		entries = *d
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			entries = append(entries, types.DictEntry{Key: oe.Key, Value: oe.Value})
		}
	case *pthTensor:
		return nil, nil, errors.New("holds a single tensor, want a dict of tensors (a state dict: torch.save(model.state_dict(), path))")
	case *pyInstance:
		return nil, nil, fmt.Errorf("holds a pickled %s object, want a dict of tensors: save model.state_dict() instead", d)
	default:
		return nil, nil, fmt.Errorf("holds a %s, want a dict of tensors (a state dict: torch.save(model.state_dict(), path))", pyTypeName(obj))
	}
	var tensors []NamedTensor
	index := map[string]int{}
	extras := map[string]any{}
	for _, e := range entries {
		name, ok := e.Key.(string)
		if !ok {
			return nil, nil, fmt.Errorf("holds a dict with a %s key (%v), want a state dict keyed by parameter names", pyTypeName(e.Key), e.Key)
		}
		// A Python dict keeps the last value of a repeated key; so do we.
		if i, ok := index[name]; ok {
			tensors = append(tensors[:i], tensors[i+1:]...)
			delete(index, name)
			for k, j := range index {
				if j > i {
					index[k] = j - 1
				}
			}
		}
		delete(extras, name)
		if t, ok := e.Value.(*pthTensor); ok {
			shape, f32, ints, err := t.values()
			if err != nil {
				return nil, nil, fmt.Errorf("tensor %s: %w", name, err)
			}
			if t.st.dt.float {
				index[name] = len(tensors)
				tensors = append(tensors, NamedTensor{Name: name, Shape: shape, Data: f32})
			} else {
				extras[name] = IntTensor{DType: t.st.dt.name, Shape: shape, Data: ints}
			}
			continue
		}
		v, err := pyToGo(e.Value, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("entry %s: %w", name, err)
		}
		extras[name] = v
	}
	return tensors, extras, nil
}

// maxPthElems bounds one tensor (16 GiB of float32): only a tensor expanded with zero
// strides can claim more elements than its file holds bytes, and none of a network's
// weights comes near this.
const maxPthElems = 1 << 32

// values copies the tensor's elements in row-major order: to float32 for float
// storages, to int64 otherwise.
func (t *pthTensor) values() (tensor.Shape, []float32, []int64, error) {
	src, err := t.st.bytes()
	if err != nil {
		return nil, nil, nil, err
	}
	// Bounds: the last element offset+Σ(size-1)*stride must lie inside the storage;
	// computed so that a corrupt file cannot overflow it.
	numel := 1
	for _, s := range t.size {
		if s != 0 && numel > maxPthElems/s {
			return nil, nil, nil, fmt.Errorf("size %v is too large (more than %d elements)", t.size, maxPthElems)
		}
		numel *= s
	}
	shape := make(tensor.Shape, len(t.size)) // a scalar's shape is empty, not nil
	copy(shape, t.size)
	if numel > 0 {
		last := t.offset
		for i, s := range t.size {
			if t.stride[i] > 0 && s-1 > (math.MaxInt-last)/t.stride[i] {
				return nil, nil, nil, fmt.Errorf("size %v with strides %v overflows", t.size, t.stride)
			}
			last += (s - 1) * t.stride[i]
		}
		if last >= t.st.numel {
			return nil, nil, nil, fmt.Errorf("corrupt PyTorch checkpoint: size %v, strides %v at offset %d reach element %d of a storage of %d",
				t.size, t.stride, t.offset, last, t.st.numel)
		}
	}
	dt := t.st.dt
	var f32 []float32
	var ints []int64
	var put func(i, elem int)
	if dt.float {
		f32 = make([]float32, numel)
		dec := floatDecoder(dt.name)
		put = func(i, elem int) { f32[i] = dec(src[elem*dt.size:]) }
	} else {
		ints = make([]int64, numel)
		dec := intDecoder(dt.name)
		put = func(i, elem int) { ints[i] = dec(src[elem*dt.size:]) }
	}
	if dt.name == "float32" && t.contiguous() {
		// The common case, a dense float32 tensor, without a call per element.
		b := src[t.offset*4 : (t.offset+numel)*4]
		for i := range f32 {
			f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return shape, f32, nil, nil
	}
	// Walk the elements in row-major order of the logical shape, following strides:
	// this copes with any view (transposed, sliced, expanded with stride 0).
	nd := len(t.size)
	idx := make([]int, nd)
	off := t.offset
	for i := 0; i < numel; i++ {
		put(i, off)
		for d := nd - 1; d >= 0; d-- {
			idx[d]++
			off += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			off -= t.stride[d] * t.size[d]
			idx[d] = 0
		}
	}
	return shape, f32, ints, nil
}

// contiguous reports whether the tensor's strides are the row-major ones (dimensions
// of size 1 may have any stride).
func (t *pthTensor) contiguous() bool {
	want := 1
	for d := len(t.size) - 1; d >= 0; d-- {
		if t.size[d] != 1 && t.stride[d] != want {
			return false
		}
		want *= t.size[d]
	}
	return true
}

func floatDecoder(name string) func([]byte) float32 {
	switch name {
	case "float64":
		return func(b []byte) float32 { return float32(math.Float64frombits(binary.LittleEndian.Uint64(b))) }
	case "float16":
		return func(b []byte) float32 { return halfToFloat32(binary.LittleEndian.Uint16(b)) }
	case "bfloat16":
		return func(b []byte) float32 { return math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16) }
	}
	return func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }
}

func intDecoder(name string) func([]byte) int64 {
	switch name {
	case "int32":
		return func(b []byte) int64 { return int64(int32(binary.LittleEndian.Uint32(b))) }
	case "int16":
		return func(b []byte) int64 { return int64(int16(binary.LittleEndian.Uint16(b))) }
	case "int8":
		return func(b []byte) int64 { return int64(int8(b[0])) }
	case "uint8", "bool":
		return func(b []byte) int64 { return int64(b[0]) }
	}
	return func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) }
}

// halfToFloat32 widens an IEEE 754 binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN (payload kept)
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0: // zero or subnormal: mant * 2^-24
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// pyToGo converts a non-tensor pickled value into plain Go values for extras.
func pyToGo(v any, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("nested too deeply")
	}
	switch x := v.(type) {
	case nil, bool, int, float64, string, *big.Int:
		return x, nil
	case []byte:
		return append([]byte(nil), x...), nil
	case *types.List:
		return pySeq(*x, depth)
	case *types.Tuple:
		return pySeq(*x, depth)
	case *types.Dict:
		m := make(map[string]any, len(*x))
		for _, e := range *x {
			if err := pySetKey(m, e.Key, e.Value, depth); err != nil {
				return nil, err
			}
		}
		return m, nil
	case *types.OrderedDict:
		m := make(map[string]any, x.Len())
		for e := x.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			if err := pySetKey(m, oe.Key, oe.Value, depth); err != nil {
				return nil, err
			}
		}
		return m, nil
	case *pthTensor:
		return nil, errors.New("holds tensors nested in a container: this looks like a training checkpoint that wraps the state dict " +
			"(e.g. {'model': state_dict, 'optimizer': ...}); save the state dict itself with torch.save(model.state_dict(), path)")
	case *pyInstance:
		return PyObject{Class: x.String()}, nil
	case *pyClass:
		return PyObject{Class: x.module + "." + x.name}, nil
	}
	return PyObject{Class: pyTypeName(v)}, nil
}

func pySeq(items []any, depth int) ([]any, error) {
	out := make([]any, len(items))
	for i, it := range items {
		v, err := pyToGo(it, depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func pySetKey(m map[string]any, k, v any, depth int) error {
	ks, ok := k.(string)
	if !ok {
		ks = fmt.Sprint(k)
	}
	gv, err := pyToGo(v, depth+1)
	if err != nil {
		return err
	}
	m[ks] = gv
	return nil
}

// pyTypeName names the Python type of an unpickled value, for error messages.
func pyTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case *types.List:
		return "list"
	case *types.Tuple:
		return "tuple"
	case *types.Dict:
		return "dict"
	case *types.OrderedDict:
		return "OrderedDict"
	case *types.Set:
		return "set"
	case *types.FrozenSet:
		return "frozenset"
	case *pthTensor:
		return "tensor"
	case *pthStorage:
		return "storage"
	case *pyInstance:
		return x.String() + " object"
	case *pyClass:
		return "class " + x.module + "." + x.name
	case *storageClass:
		return "class " + x.class
	case *pyFunc:
		return "function " + x.name
	}
	return fmt.Sprintf("%T", v)
}
