package calib

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxFileSize bounds what Load reads: calibration files are a few kilobytes.
const maxFileSize = 1 << 20

// Load reads a stereo calibration from files and validates it, telling the format from
// the content:
//
//   - one cv::FileStorage file (YAML or XML) holding everything;
//   - several cv::FileStorage files that together hold it, such as stereo_calib's
//     intrinsics.yml and extrinsics.yml (a key given in two files is an error);
//   - two ROS camera_info files, left then right.
//
// The calibration must record its image size (see the package documentation).
func Load(paths ...string) (Stereo, error) {
	if len(paths) == 0 {
		return Stereo{}, errors.New("calib: no calibration file given")
	}
	docs := make([]*doc, 0, len(paths))
	ros := 0
	for _, p := range paths {
		d, err := readDoc(p)
		if err != nil {
			return Stereo{}, err
		}
		if isCameraInfo(d) {
			ros++
		}
		docs = append(docs, d)
	}
	var s Stereo
	switch {
	case ros == 0:
		var err error
		if s, err = stereoFromDocs(docs); err != nil {
			return Stereo{}, err
		}
	case ros == 2 && len(docs) == 2:
		left, err := cameraInfoFromDoc(docs[0])
		if err != nil {
			return Stereo{}, err
		}
		right, err := cameraInfoFromDoc(docs[1])
		if err != nil {
			return Stereo{}, err
		}
		return StereoFromCameraInfo(left, right)
	default:
		return Stereo{}, fmt.Errorf("calib: %v: ROS camera_info needs two files, left then right, and no others", paths)
	}
	if s.Size == (ImageSize{}) {
		return Stereo{}, fmt.Errorf("calib: %v: no image size: add image_width and image_height (the size of the "+
			"calibration images; OpenCV's stereo_calib sample does not write it)", paths)
	}
	if err := s.Validate(); err != nil {
		return Stereo{}, fmt.Errorf("%v: %w", paths, err)
	}
	return s, nil
}

func readDoc(path string) (*doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("calib: %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, &ParseError{File: path, Msg: fmt.Sprintf("larger than %d bytes: not a calibration file", maxFileSize)}
	}
	if isXML(data) {
		return parseXMLDoc(path, data)
	}
	return parseYAMLDoc(path, data)
}

// isXML tells FileStorage XML from YAML: XML starts with a declaration or an element.
func isXML(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n\ufeff")
	return bytes.HasPrefix(t, []byte("<"))
}

// isCameraInfo tells a ROS camera_info file from a FileStorage one: only the former has
// a projection_matrix next to a camera_matrix.
func isCameraInfo(d *doc) bool {
	return d.root.get("camera_matrix") != nil && d.root.get("projection_matrix") != nil
}
