package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/edgedepth/edgedepth/camera/calib"
)

// maxSquareM is the largest --square accepted. No printed board has squares anywhere
// near a metre; a larger value is a size in millimetres, or OpenCV's default of 1
// ("squares"), and would make every depth wrong by that factor.
const maxSquareM = 0.5

const calibUsage = `Usage: edgedepth calib --board COLSxROWS --square METRES [--out FILE] [--force] IMAGE...
       edgedepth calib --board COLSxROWS --square METRES [--out FILE] [--force] FOLDER

Calibrates a stereo pair from chessboard images, offline, the way OpenCV's stereo_calib
sample does, and writes the calibration as OpenCV YAML (with the image size) for the
daemon's calibration setting.

IMAGE... are PNG or JPEG files, left and right alternating, as OpenCV's sample lists
them: left01.jpg right01.jpg left02.jpg right02.jpg ... A FOLDER (the only argument)
is read as its files left<ID>.<png|jpg|jpeg> and right<ID>.<png|jpg|jpeg>, paired by
<ID> (left01.png with right01.png; the ID must not be empty) and sorted by it; other
files are ignored.

--board counts inner corners (where four squares meet), not squares: 9x6 for a board of
10x7 squares. Prefer one even and one odd count: a board that looks the same turned
by 180 degrees can be numbered from opposite corners in the two images.
--square is the side of one square in metres, measured on the print (0.025 for
25 mm): the baseline, and so every depth, scales with it.

Prints the pairs used and rejected (with why), the RMS reprojection error and the
average epipolar error, both in pixels; progress goes to stderr. Use 10 to 20 pairs
with the board tilted and placed all over both images. Flags go before the images.

`

func cmdCalib(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth calib", flag.ContinueOnError)
	fs.SetOutput(stderr)
	boardFlag := fs.String("board", "", "chessboard inner corners `COLSxROWS`, e.g. 9x6 (required)")
	square := fs.Float64("square", 0, "side of one chessboard square in `metres`, e.g. 0.025 (required)")
	out := fs.String("out", "stereo.yaml", "calibration `file` to write (OpenCV YAML)")
	force := fs.Bool("force", false, "overwrite --out if it exists")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), calibUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	usageErr := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "edgedepth calib: "+format+"\n\n", a...)
		fs.Usage()
		return errUsage
	}
	if *boardFlag == "" {
		return usageErr("--board is required (inner corners, e.g. 9x6)")
	}
	cols, rows, err := parseBoard(*boardFlag)
	if err != nil {
		return usageErr("--board: %v", err)
	}
	switch {
	case *square == 0:
		return usageErr("--square is required (metres, e.g. 0.025)")
	case !(*square > 0):
		return usageErr("--square %g must be positive", *square)
	case *square > maxSquareM:
		return usageErr("--square %g: the size is in metres (0.025 for 25 mm squares), at most %g", *square, maxSquareM)
	}
	if *out == "" {
		return usageErr("--out must name a file")
	}
	if fs.NArg() == 0 {
		return usageErr("no images: give left and right images alternating, or a folder")
	}
	pairs, err := imagePairs(fs.Args())
	if err != nil {
		if errors.Is(err, errOddImages) {
			return usageErr("%v", err)
		}
		return err
	}
	// Before minutes of corner search, not after.
	if !*force {
		if _, err := os.Lstat(*out); err == nil {
			return fmt.Errorf("calib: %s exists; use --force to overwrite it or --out to write elsewhere", *out)
		}
	}
	board := calib.Board{Cols: cols, Rows: rows, SquareM: *square}
	if board.Symmetric() {
		fmt.Fprintf(stderr, "warning: a %dx%d board looks the same turned by 180 degrees; if the RMS error is large, "+
			"use a board with one even and one odd corner count\n", cols, rows)
	}

	res, err := calib.CalibrateChessboard(pairs, board, func(p calib.PairProgress) {
		status := "board found in both images"
		if !p.Used {
			status = "rejected: " + p.Reason
		}
		fmt.Fprintf(stderr, "[%*d/%d] %s + %s: %s\n", len(strconv.Itoa(p.Total)), p.Index+1, p.Total,
			filepath.Base(p.Pair.Left), filepath.Base(p.Pair.Right), status)
	})
	if len(res.PairsUsed)+len(res.PairsRejected) == len(pairs) {
		// Every pair was looked at: say which ones count, also when too few did.
		printPairs(stdout, res, len(pairs))
	}
	if err != nil {
		return err
	}
	s := res.Stereo
	fmt.Fprintf(stdout, "RMS reprojection error: %.4f px\n", res.RMS)
	fmt.Fprintf(stdout, "average epipolar error: %.4f px\n", res.EpipolarError)
	fmt.Fprintf(stdout, "image size %v, fx %.2f, baseline %.4f m\n", s.Size, s.K1[0], s.Baseline())

	var buf bytes.Buffer
	if err := calib.WriteOpenCVYAML(&buf, s); err != nil {
		return err
	}
	if err := writeFileAtomic(*out, buf.Bytes(), *force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

func printPairs(w io.Writer, res calib.ChessboardResult, total int) {
	fmt.Fprintf(w, "pairs used: %d of %d\n", len(res.PairsUsed), total)
	for _, r := range res.PairsRejected {
		fmt.Fprintf(w, "  rejected %s\n", r)
	}
}

// parseBoard reads COLSxROWS.
func parseBoard(s string) (cols, rows int, err error) {
	c, r, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		cols, err = strconv.Atoi(c)
		if err == nil {
			rows, err = strconv.Atoi(r)
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("%q is not COLSxROWS, e.g. 9x6", s)
	}
	if cols < 3 || rows < 3 {
		return 0, 0, fmt.Errorf("%dx%d: each side needs at least 3 inner corners", cols, rows)
	}
	return cols, rows, nil
}

// errOddImages marks an image list that cannot alternate left and right.
var errOddImages = errors.New("odd number of images")

// imagePairs turns the arguments into pairs: one folder, or files alternating left and
// right.
func imagePairs(args []string) ([]calib.ImagePair, error) {
	if len(args) == 1 {
		if fi, err := os.Stat(args[0]); err == nil && fi.IsDir() {
			return folderPairs(args[0])
		}
	}
	for _, a := range args {
		if fi, err := os.Stat(a); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("calib: %s is a folder: give one folder alone, or image files", a)
		}
	}
	if len(args)%2 != 0 {
		return nil, fmt.Errorf("%w (%d): give left and right images alternating, left first", errOddImages, len(args))
	}
	pairs := make([]calib.ImagePair, 0, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		pairs = append(pairs, calib.ImagePair{Left: args[i], Right: args[i+1]})
	}
	return pairs, nil
}

// folderPairs pairs left<ID>.<ext> with right<ID>.<ext> in dir, sorted by ID. A file
// without its partner is an error: silently calibrating from fewer pairs than were
// captured hides a capture problem.
func folderPairs(dir string) ([]calib.ImagePair, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	sides := [2]map[string]string{{}, {}}
	for _, e := range entries {
		if !e.Type().IsRegular() && e.Type()&os.ModeSymlink == 0 {
			continue
		}
		name := e.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if ext != ".png" && ext != ".jpg" && ext != ".jpeg" {
			continue
		}
		stem := strings.ToLower(strings.TrimSuffix(name, filepath.Ext(name)))
		for k, prefix := range []string{"left", "right"} {
			id, ok := strings.CutPrefix(stem, prefix)
			if !ok || id == "" {
				continue
			}
			if other, dup := sides[k][id]; dup {
				return nil, fmt.Errorf("calib: %s: %s and %s have the same ID %q", dir, filepath.Base(other), name, id)
			}
			sides[k][id] = filepath.Join(dir, name)
		}
	}
	var ids, orphans []string
	for id, l := range sides[0] {
		if _, ok := sides[1][id]; ok {
			ids = append(ids, id)
		} else {
			orphans = append(orphans, filepath.Base(l))
		}
	}
	for id, r := range sides[1] {
		if _, ok := sides[0][id]; !ok {
			orphans = append(orphans, filepath.Base(r))
		}
	}
	if len(orphans) > 0 {
		sort.Strings(orphans)
		return nil, fmt.Errorf("calib: %s: no partner for %s (left<ID> pairs with right<ID>, same ID)", dir, strings.Join(orphans, ", "))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("calib: %s has no left<ID>/right<ID> PNG or JPEG files (e.g. left01.png, right01.png)", dir)
	}
	sort.Strings(ids)
	pairs := make([]calib.ImagePair, len(ids))
	for i, id := range ids {
		pairs[i] = calib.ImagePair{Left: sides[0][id], Right: sides[1][id]}
	}
	return pairs, nil
}

// writeFileAtomic writes data to path through a temporary file in the same folder, so
// that a crash or a full disk never leaves a truncated calibration where the daemon
// will read it. Without overwrite, an existing path is refused, also when it appeared
// during the calibration.
func writeFileAtomic(path string, data []byte, overwrite bool) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("calib: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("calib: %w", err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("calib: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("calib: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("calib: %w", err)
	}
	if overwrite {
		if err = os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("calib: %w", err)
		}
	} else {
		// link(2) fails when path exists, so refusing to overwrite has no window
		// between the check and the write.
		if err = os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("calib: %s exists; use --force to overwrite it", path)
			}
			// A filesystem without hard links (FAT on an SD card): check, then rename.
			if _, serr := os.Lstat(path); serr == nil {
				return fmt.Errorf("calib: %s exists; use --force to overwrite it", path)
			}
			if err = os.Rename(tmp.Name(), path); err != nil {
				return fmt.Errorf("calib: %w", err)
			}
		} else {
			os.Remove(tmp.Name())
		}
	}
	// Make the new directory entry durable too; failing to is not worth an error
	// (some filesystems do not support syncing a directory).
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
