package stratumtest

import (
	"strconv"

	"github.com/hashrelay/hashrelay/stratum"
)

// ckpoolReasons words each rejection as ckpool does in its "reject-reason" member.
var ckpoolReasons = [stratum.VerdictCount]string{
	stratum.VerdictNone:            "Unknown",
	stratum.VerdictMalformed:       "Invalid params",
	stratum.VerdictUnknownJob:      "Invalid JobID",
	stratum.VerdictExtranonce2Size: "Invalid nonce2 length",
	stratum.VerdictNTimeOutOfRange: "Ntime out of range",
	stratum.VerdictVersionBits:     "Invalid version mask",
	stratum.VerdictLowDifficulty:   "Above target",
	stratum.VerdictDuplicate:       "Duplicate",
	stratum.VerdictAccepted:        "",
}

// RejectReason returns the reason text a miner reads from the pool's answer to a
// share rejected with verdict v in the given form: the error message of v.Err() in
// the array and string forms, ckpool's wording ("Above target") in RejectCKPool.
// An injected reject (RejectNext, RejectFraction) reads as VerdictLowDifficulty.
func RejectReason(form RejectForm, v stratum.Verdict) string {
	if form == RejectCKPool {
		if int(v) < len(ckpoolReasons) {
			return ckpoolReasons[v]
		}
		return ckpoolReasons[stratum.VerdictNone]
	}
	if e := v.Err(); e != nil {
		return e.Message
	}
	return ""
}

// appendReject appends the answer to a rejected share in the given form.
func appendReject(dst, id []byte, form RejectForm, v stratum.Verdict) []byte {
	e := v.Err()
	if e == nil {
		e = stratum.ErrOther
	}
	switch form {
	case RejectString:
		dst = append(dst, `{"id":`...)
		dst = append(dst, id...)
		dst = append(dst, `,"result":null,"error":`...)
		// The messages are fixed ASCII without quotes or control characters, so
		// Go quoting and JSON quoting agree.
		dst = strconv.AppendQuote(dst, e.Message)
		return append(dst, "}\n"...)
	case RejectCKPool:
		dst = append(dst, `{"id":`...)
		dst = append(dst, id...)
		dst = append(dst, `,"result":false,"error":null,"reject-reason":`...)
		dst = strconv.AppendQuote(dst, RejectReason(RejectCKPool, v))
		return append(dst, "}\n"...)
	}
	return stratum.AppendError(dst, id, e)
}
