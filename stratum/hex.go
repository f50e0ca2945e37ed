package stratum

// fromHexDigit maps an ASCII hex digit to its value, or 0xff.
func fromHexDigit(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

// parseHex32 parses exactly 8 hex digits as the big-endian text of a uint32, the
// form Stratum uses for version, nbits, ntime, nonce and version bits.
func parseHex32(b []byte) (uint32, bool) {
	if len(b) != 8 {
		return 0, false
	}
	var v uint32
	for _, c := range b {
		d := fromHexDigit(c)
		if d == 0xff {
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}

// decodeHex decodes src into dst, which must have room for len(src)/2 bytes. It
// reports false for odd length or a non-hex digit.
func decodeHex(dst, src []byte) (int, bool) {
	if len(src)%2 != 0 || len(dst) < len(src)/2 {
		return 0, false
	}
	for i := 0; i < len(src); i += 2 {
		hi, lo := fromHexDigit(src[i]), fromHexDigit(src[i+1])
		if hi == 0xff || lo == 0xff {
			return 0, false
		}
		dst[i/2] = hi<<4 | lo
	}
	return len(src) / 2, true
}

const hexDigits = "0123456789abcdef"

// appendHex appends the lowercase hex of b.
func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return dst
}

// appendHex32 appends v as 8 hex digits, big-endian text (Stratum's u32 form).
func appendHex32(dst []byte, v uint32) []byte {
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(v>>uint(shift))&0x0f])
	}
	return dst
}
