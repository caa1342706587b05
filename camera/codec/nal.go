package codec

import (
	"errors"
	"fmt"
)

// NAL unit types of H.264 (ITU-T H.264 table 7-1) that this package looks at.
const (
	naluTypeIDR = 5
	naluTypeSPS = 7
	naluTypePPS = 8
	naluTypeAUD = 9
)

func naluType(nalu []byte) byte { return nalu[0] & 0x1f }

// splitAnnexB splits an Annex B byte stream (NAL units behind 00 00 01 or 00 00 00 01
// start codes) into NAL units without start codes. The returned slices alias b.
// Empty NAL units are dropped; bytes before the first start code are an error.
func splitAnnexB(b []byte) ([][]byte, error) {
	start, n := nextStartCode(b, 0)
	if start != 0 {
		if start < 0 {
			return nil, errors.New("annex B: no start code")
		}
		return nil, fmt.Errorf("annex B: %d bytes before the first start code", start)
	}
	var out [][]byte
	pos := n
	for pos < len(b) {
		next, m := nextStartCode(b, pos)
		end := next
		if next < 0 {
			end = len(b)
		}
		// trailing_zero_8bits may pad a NAL unit before the next start code.
		nalu := b[pos:end]
		for len(nalu) > 0 && nalu[len(nalu)-1] == 0 {
			nalu = nalu[:len(nalu)-1]
		}
		if len(nalu) > 0 {
			out = append(out, nalu)
		}
		if next < 0 {
			break
		}
		pos = next + m
	}
	return out, nil
}

// nextStartCode finds the first 00 00 01 at or after from and returns its index (or the
// index of the zero before it, for the 4-byte form) and its length; -1 if there is none.
func nextStartCode(b []byte, from int) (int, int) {
	for i := from; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if i > from && b[i-1] == 0 {
				return i - 1, 4
			}
			return i, 3
		}
	}
	return -1, 0
}

// parseExtradata extracts SPS and PPS from an encoder's extradata, which is Annex B for
// libx264 and NVENC but the avcC box (ISO/IEC 14496-15) for some other encoders.
func parseExtradata(b []byte) (sps, pps []byte, err error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	var nalus [][]byte
	if b[0] == 1 {
		nalus, err = splitAVCC(b)
	} else {
		nalus, err = splitAnnexB(b)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("extradata: %w", err)
	}
	for _, n := range nalus {
		switch naluType(n) {
		case naluTypeSPS:
			if sps == nil {
				sps = n
			}
		case naluTypePPS:
			if pps == nil {
				pps = n
			}
		}
	}
	return sps, pps, nil
}

// splitAVCC returns the parameter sets of an AVCDecoderConfigurationRecord.
func splitAVCC(b []byte) ([][]byte, error) {
	if len(b) < 6 {
		return nil, errors.New("avcC: too short")
	}
	var out [][]byte
	pos := 6 // configurationVersion, profile, compatibility, level, lengthSizeMinusOne, numSPS
	read := func(count int) error {
		for range count {
			if pos+2 > len(b) {
				return errors.New("avcC: truncated")
			}
			n := int(b[pos])<<8 | int(b[pos+1])
			pos += 2
			if n == 0 || pos+n > len(b) {
				return errors.New("avcC: truncated parameter set")
			}
			out = append(out, b[pos:pos+n])
			pos += n
		}
		return nil
	}
	if err := read(int(b[5] & 0x1f)); err != nil {
		return nil, err
	}
	if pos >= len(b) {
		return nil, errors.New("avcC: no PPS count")
	}
	count := int(b[pos])
	pos++
	if err := read(count); err != nil {
		return nil, err
	}
	return out, nil
}

// IsIDR reports whether an access unit holds an IDR picture (a point where decoding can
// start).
func IsIDR(au [][]byte) bool {
	for _, n := range au {
		if len(n) > 0 && naluType(n) == naluTypeIDR {
			return true
		}
	}
	return false
}

// withParameterSets returns au with sps and pps in front of its first slice unless it
// already carries an SPS and a PPS. Access unit delimiters stay first, as H.264 7.4.1.2.3
// requires.
func withParameterSets(au [][]byte, sps, pps []byte) [][]byte {
	hasSPS, hasPPS := false, false
	for _, n := range au {
		switch naluType(n) {
		case naluTypeSPS:
			hasSPS = true
		case naluTypePPS:
			hasPPS = true
		}
	}
	if (hasSPS && hasPPS) || sps == nil || pps == nil {
		return au
	}
	out := make([][]byte, 0, len(au)+2)
	i := 0
	for i < len(au) && naluType(au[i]) == naluTypeAUD {
		out = append(out, au[i])
		i++
	}
	out = append(out, sps, pps)
	for _, n := range au[i:] {
		t := naluType(n)
		if t == naluTypeSPS || t == naluTypePPS {
			continue // replaced by the complete pair just added
		}
		out = append(out, n)
	}
	return out
}

// appendAnnexB appends au to dst in Annex B form (4-byte start codes).
func appendAnnexB(dst []byte, au [][]byte) []byte {
	for _, n := range au {
		dst = append(dst, 0, 0, 0, 1)
		dst = append(dst, n...)
	}
	return dst
}
