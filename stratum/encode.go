package stratum

import (
	"strconv"
	"unicode/utf8"
)

// The encoders below append one complete line, newline included, to dst and return
// the extended slice, in the style of strconv.AppendInt. None allocates when dst has
// room. Responses echo the request's raw id (Message.ID) byte for byte; requests a
// proxy originates carry its own numeric ids.

// appendJSONString appends s as a JSON string, escaping quotes, backslashes and
// control characters. Valid UTF-8 passes through; each byte that is not becomes
// U+FFFD, as in encoding/json, since JSON text must be UTF-8 and strict parsers
// (jansson, in ckpool) refuse a line that is not.
func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			var buf [utf8.UTFMax]byte
			r, size := utf8.DecodeRune(buf[:copy(buf[:], s[i:])])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\ufffd"...)
			} else {
				dst = append(dst, s[i:i+size]...)
				i += size - 1
			}
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20 || c == 0x7f:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func appendID(dst, id []byte) []byte {
	if len(id) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, id...)
}

// appendFloat appends a difficulty without an exponent or a trailing ".0", which
// some firmware cannot parse.
func appendFloat(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// AppendResult appends a response whose result is the raw JSON value result.
func AppendResult(dst, id []byte, result string) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":`...)
	dst = append(dst, result...)
	return append(dst, ",\"error\":null}\n"...)
}

// AppendBool appends a response with result true or false.
func AppendBool(dst, id []byte, v bool) []byte {
	if v {
		return AppendResult(dst, id, "true")
	}
	return AppendResult(dst, id, "false")
}

// AppendError appends an error response in the V1 array form
// {"id":…,"result":null,"error":[code,"message",null]}.
func AppendError(dst, id []byte, e *Error) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":null,"error":[`...)
	dst = strconv.AppendInt(dst, int64(e.Code), 10)
	dst = append(dst, ',')
	dst = appendJSONString(dst, e.Message)
	return append(dst, ",null]}\n"...)
}

// AppendStringResult appends a response whose result is a string (the answer to
// client.get_version).
func AppendStringResult(dst, id []byte, s []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":`...)
	dst = appendJSONString(dst, s)
	return append(dst, ",\"error\":null}\n"...)
}

// AppendSubscribeResult appends the answer to mining.subscribe:
// [[["mining.set_difficulty",sid],["mining.notify",sid]],"extranonce1",size].
func AppendSubscribeResult(dst, id, sessionID, extranonce1 []byte, extranonce2Size int) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":[[["mining.set_difficulty",`...)
	dst = appendJSONString(dst, sessionID)
	dst = append(dst, `],["mining.notify",`...)
	dst = appendJSONString(dst, sessionID)
	dst = append(dst, `]],"`...)
	dst = appendHex(dst, extranonce1)
	dst = append(dst, `",`...)
	dst = strconv.AppendInt(dst, int64(extranonce2Size), 10)
	return append(dst, "],\"error\":null}\n"...)
}

// AppendConfigureResult appends the answer to mining.configure: an entry for each
// extension asked for, the granted version-rolling mask, and false for each unknown
// extension.
func AppendConfigureResult(dst, id []byte, r *ConfigureResult) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":{`...)
	first := true
	entry := func(key string, v bool) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, key...)
		dst = append(dst, `":`...)
		dst = strconv.AppendBool(dst, v)
	}
	if r.Asked&ExtVersionRolling != 0 {
		granted := r.Granted&ExtVersionRolling != 0
		entry("version-rolling", granted)
		if granted {
			dst = append(dst, `,"version-rolling.mask":"`...)
			dst = appendHex32(dst, r.VersionMask)
			dst = append(dst, '"')
		}
	}
	if r.Asked&ExtMinimumDifficulty != 0 {
		entry("minimum-difficulty", r.Granted&ExtMinimumDifficulty != 0)
	}
	if r.Asked&ExtSubscribeExtranonce != 0 {
		entry("subscribe-extranonce", r.Granted&ExtSubscribeExtranonce != 0)
	}
	if r.Asked&ExtInfo != 0 {
		entry("info", r.Granted&ExtInfo != 0)
	}
	for _, name := range r.Unknown {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, name)
		dst = append(dst, ":false"...)
	}
	return append(dst, "},\"error\":null}\n"...)
}

// appendNotification starts {"id":null,"method":"…","params":[ .
func appendNotification(dst []byte, method Method) []byte {
	dst = append(dst, `{"id":null,"method":"`...)
	dst = append(dst, method.String()...)
	return append(dst, `","params":[`...)
}

// appendRequest starts {"id":N,"method":"…","params":[ .
func appendRequest(dst []byte, id uint64, method Method) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"method":"`...)
	dst = append(dst, method.String()...)
	return append(dst, `","params":[`...)
}

const endParams = "]}\n"

// AppendNotify appends mining.notify for j, re-applying the prevhash word swap and
// writing version, nbits and ntime as big-endian hex.
func AppendNotify(dst []byte, j *Job) []byte {
	dst = appendNotification(dst, MethodNotify)
	dst = appendJSONString(dst, j.ID)
	dst = append(dst, `,"`...)
	wire := SwapWords(j.PrevHash)
	dst = appendHex(dst, wire[:])
	dst = append(dst, `","`...)
	dst = appendHex(dst, j.Coinb1)
	dst = append(dst, `","`...)
	dst = appendHex(dst, j.Coinb2)
	dst = append(dst, `",[`...)
	for i := range j.Branch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = appendHex(dst, j.Branch[i][:])
		dst = append(dst, '"')
	}
	dst = append(dst, `],"`...)
	dst = appendHex32(dst, j.Version)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, j.NBits)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, j.NTime)
	dst = append(dst, `",`...)
	dst = strconv.AppendBool(dst, j.Clean)
	return append(dst, endParams...)
}

// AppendSetDifficulty appends mining.set_difficulty.
func AppendSetDifficulty(dst []byte, d float64) []byte {
	dst = appendNotification(dst, MethodSetDifficulty)
	dst = appendFloat(dst, d)
	return append(dst, endParams...)
}

// AppendSetExtranonce appends mining.set_extranonce.
func AppendSetExtranonce(dst, extranonce1 []byte, extranonce2Size int) []byte {
	dst = appendNotification(dst, MethodSetExtranonce)
	dst = append(dst, '"')
	dst = appendHex(dst, extranonce1)
	dst = append(dst, `",`...)
	dst = strconv.AppendInt(dst, int64(extranonce2Size), 10)
	return append(dst, endParams...)
}

// AppendSetVersionMask appends mining.set_version_mask.
func AppendSetVersionMask(dst []byte, mask uint32) []byte {
	dst = appendNotification(dst, MethodSetVersionMask)
	dst = append(dst, '"')
	dst = appendHex32(dst, mask)
	dst = append(dst, '"')
	return append(dst, endParams...)
}

// AppendReconnect appends client.reconnect: [host, port, wait], or [] when host is
// empty (reconnect to the same server).
func AppendReconnect(dst []byte, host string, port, wait int) []byte {
	dst = appendNotification(dst, MethodReconnect)
	if host != "" {
		dst = appendJSONString(dst, host)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(port), 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(wait), 10)
	}
	return append(dst, endParams...)
}

// AppendShowMessage appends client.show_message.
func AppendShowMessage(dst []byte, text string) []byte {
	dst = appendNotification(dst, MethodShowMessage)
	dst = appendJSONString(dst, text)
	return append(dst, endParams...)
}

// AppendPing appends a mining.ping request (pools send it to keep idle miners).
func AppendPing(dst []byte, id uint64) []byte {
	return append(appendRequest(dst, id, MethodPing), endParams...)
}

// AppendGetVersion appends a client.get_version request.
func AppendGetVersion(dst []byte, id uint64) []byte {
	return append(appendRequest(dst, id, MethodGetVersion), endParams...)
}

// AppendConfigure appends a mining.configure request for the given extensions, with
// the version-rolling mask and the minimum difficulty when those are asked for.
func AppendConfigure(dst []byte, id uint64, exts Extensions, mask uint32, minDifficulty float64) []byte {
	dst = appendRequest(dst, id, MethodConfigure)
	dst = append(dst, '[')
	sep := func() {
		if dst[len(dst)-1] != '[' && dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
	}
	for _, e := range [...]struct {
		ext  Extensions
		name string
	}{{ExtVersionRolling, "version-rolling"}, {ExtMinimumDifficulty, "minimum-difficulty"},
		{ExtSubscribeExtranonce, "subscribe-extranonce"}, {ExtInfo, "info"}} {
		if exts&e.ext != 0 {
			sep()
			dst = append(dst, '"')
			dst = append(dst, e.name...)
			dst = append(dst, '"')
		}
	}
	dst = append(dst, "],{"...)
	if exts&ExtVersionRolling != 0 {
		dst = append(dst, `"version-rolling.mask":"`...)
		dst = appendHex32(dst, mask)
		dst = append(dst, `","version-rolling.min-bit-count":0`...)
	}
	if exts&ExtMinimumDifficulty != 0 {
		sep()
		dst = append(dst, `"minimum-difficulty.value":`...)
		dst = appendFloat(dst, minDifficulty)
	}
	dst = append(dst, '}')
	return append(dst, endParams...)
}

// AppendSubscribe appends mining.subscribe with a user agent and, when session is not
// empty, the session id to resume.
func AppendSubscribe(dst []byte, id uint64, agent, session string) []byte {
	dst = appendRequest(dst, id, MethodSubscribe)
	dst = appendJSONString(dst, agent)
	if session != "" {
		dst = append(dst, ',')
		dst = appendJSONString(dst, session)
	}
	return append(dst, endParams...)
}

// AppendAuthorize appends mining.authorize.
func AppendAuthorize(dst []byte, id uint64, user, password string) []byte {
	dst = appendRequest(dst, id, MethodAuthorize)
	dst = appendJSONString(dst, user)
	dst = append(dst, ',')
	dst = appendJSONString(dst, password)
	return append(dst, endParams...)
}

// AppendExtranonceSubscribe appends mining.extranonce.subscribe.
func AppendExtranonceSubscribe(dst []byte, id uint64) []byte {
	return append(appendRequest(dst, id, MethodExtranonceSubscribe), endParams...)
}

// AppendSuggestDifficulty appends mining.suggest_difficulty.
func AppendSuggestDifficulty(dst []byte, id uint64, d float64) []byte {
	dst = appendRequest(dst, id, MethodSuggestDifficulty)
	dst = appendFloat(dst, d)
	return append(dst, endParams...)
}

// AppendSubmit appends mining.submit for s: 5 params, or 6 with version bits.
// s.Extranonce2 is hex text; it is escaped like any string all the same, since a
// decoded Submit's extranonce2 is only checked by the share check.
func AppendSubmit(dst []byte, id uint64, s *Submit) []byte {
	dst = appendRequest(dst, id, MethodSubmit)
	dst = appendJSONString(dst, s.Worker)
	dst = append(dst, ',')
	dst = appendJSONString(dst, s.JobID)
	dst = append(dst, ',')
	dst = appendJSONString(dst, s.Extranonce2)
	dst = append(dst, `,"`...)
	dst = appendHex32(dst, s.NTime)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, s.Nonce)
	if s.HasVersionBits {
		dst = append(dst, `","`...)
		dst = appendHex32(dst, s.VersionBits)
	}
	dst = append(dst, '"')
	return append(dst, endParams...)
}
