package stratum

import (
	"math"

	"github.com/valyala/fastjson"
)

// Extensions is a set of mining.configure extensions (BIP 310).
type Extensions uint8

// The extensions HashRelay understands.
const (
	ExtVersionRolling Extensions = 1 << iota
	ExtMinimumDifficulty
	ExtSubscribeExtranonce
	ExtInfo
)

// MaxUnknownExtensions bounds how many unknown extension names a configure request
// may carry; each is answered false.
const MaxUnknownExtensions = 8

// ConfigureRequest is a decoded mining.configure request.
type ConfigureRequest struct {
	Extensions Extensions
	// VersionMask is the miner's version-rolling.mask, 0xffffffff when absent.
	VersionMask uint32
	// MinBitCount is version-rolling.min-bit-count, 0 when absent (real miners omit it).
	MinBitCount int
	// MinimumDifficulty is minimum-difficulty.value.
	MinimumDifficulty float64
	// Info fields, valid until the next Decode.
	ConnectionURL, HWVersion, SWVersion, HWID []byte
	// Unknown lists extension names this package does not know (answer false).
	Unknown [][]byte
	unknown [MaxUnknownExtensions][]byte
}

// Configure decodes mining.configure params [[ext...], {"ext.param": value}] into c
// without allocating.
func (m *Message) Configure(c *ConfigureRequest) error {
	*c = ConfigureRequest{VersionMask: 0xffffffff}
	c.Unknown = c.unknown[:0]
	exts := m.param(0)
	if exts == nil || exts.Type() != fastjson.TypeArray {
		return badParams(MethodConfigure, "extension list is not an array")
	}
	list, _ := exts.Array()
	for _, e := range list {
		name, err := e.StringBytes()
		if err != nil {
			return badParams(MethodConfigure, "extension name is not a string")
		}
		switch string(name) {
		case "version-rolling":
			c.Extensions |= ExtVersionRolling
		case "minimum-difficulty":
			c.Extensions |= ExtMinimumDifficulty
		case "subscribe-extranonce":
			c.Extensions |= ExtSubscribeExtranonce
		case "info":
			c.Extensions |= ExtInfo
		default:
			if len(c.Unknown) == MaxUnknownExtensions {
				return badParams(MethodConfigure, "too many extensions")
			}
			c.Unknown = append(c.Unknown, name)
		}
	}
	p := m.param(1)
	if p == nil || p.Type() != fastjson.TypeObject {
		return nil // params object is optional in practice
	}
	if v := p.Get("version-rolling.mask"); v != nil {
		b, err := v.StringBytes()
		mask, ok := parseHex32(b)
		if err != nil || !ok {
			return badParams(MethodConfigure, "version-rolling.mask is not 8 hex digits")
		}
		c.VersionMask = mask
	}
	if v := p.Get("version-rolling.min-bit-count"); v != nil {
		n, err := v.Int()
		if err != nil || n < 0 || n > 32 {
			return badParams(MethodConfigure, "version-rolling.min-bit-count out of range")
		}
		c.MinBitCount = n
	}
	if v := p.Get("minimum-difficulty.value"); v != nil {
		d, ok := numberValue(v)
		if !ok || v.Type() != fastjson.TypeNumber || d < 0 || math.IsInf(d, 0) || math.IsNaN(d) {
			return badParams(MethodConfigure, "minimum-difficulty.value is not a number")
		}
		c.MinimumDifficulty = d
	}
	c.ConnectionURL = p.GetStringBytes("info.connection-url")
	c.HWVersion = p.GetStringBytes("info.hw-version")
	c.SWVersion = p.GetStringBytes("info.sw-version")
	c.HWID = p.GetStringBytes("info.hw-id")
	return nil
}

// ConfigureResult is the answer to mining.configure: for each extension asked for,
// whether it is granted, and the version-rolling mask granted.
type ConfigureResult struct {
	Asked   Extensions
	Granted Extensions
	// VersionMask is the granted mask (the server's mask & the miner's, BIP 310).
	VersionMask uint32
	// Unknown lists extension names answered false.
	Unknown [][]byte
}

// ConfigureResult decodes a pool's answer to mining.configure. A pool that answers
// with an error or without a version-rolling entry grants nothing.
func (m *Message) ConfigureResult() (ConfigureResult, error) {
	var r ConfigureResult
	if m.result == nil || m.result.Type() != fastjson.TypeObject {
		return r, badParams(MethodConfigure, "result is not an object")
	}
	for _, e := range [...]struct {
		key string
		ext Extensions
	}{
		{"version-rolling", ExtVersionRolling},
		{"minimum-difficulty", ExtMinimumDifficulty},
		{"subscribe-extranonce", ExtSubscribeExtranonce},
		{"info", ExtInfo},
	} {
		if v := m.result.Get(e.key); v != nil {
			r.Asked |= e.ext
			if v.Type() == fastjson.TypeTrue {
				r.Granted |= e.ext
			}
		}
	}
	if r.Granted&ExtVersionRolling != 0 {
		mask, ok := parseHex32(m.result.GetStringBytes("version-rolling.mask"))
		if !ok {
			return r, badParams(MethodConfigure, "version-rolling.mask is not 8 hex digits")
		}
		r.VersionMask = mask
	}
	return r, nil
}
