package stratum

import (
	"errors"
	"strconv"
)

// Error is a Stratum V1 error as carried on the wire: a code and a message, encoded
// as the array [code, "message", null].
type Error struct {
	Code    int
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return "stratum: error " + strconv.Itoa(e.Code) + ": " + e.Message
}

// The V1 error codes (20-25 from the original protocol, the others from JSON-RPC).
var (
	ErrOther          = &Error{20, "Other/Unknown"}
	ErrJobNotFound    = &Error{21, "Job not found"}
	ErrDuplicateShare = &Error{22, "Duplicate share"}
	ErrLowDifficulty  = &Error{23, "Low difficulty share"}
	ErrUnauthorized   = &Error{24, "Unauthorized worker"}
	ErrNotSubscribed  = &Error{25, "Not subscribed"}
	ErrParse          = &Error{-32700, "Parse error"}
	ErrMethodNotFound = &Error{-32601, "Method not found"}

	// Code-20 errors with the reason spelled out, as pools word them.
	ErrMalformedShare     = &Error{20, "Malformed share"}
	ErrExtranonce2Size    = &Error{20, "Incorrect size of extranonce2"}
	ErrNTimeOutOfRange    = &Error{20, "Ntime out of range"}
	ErrInvalidVersionBits = &Error{20, "Invalid version bits"}
)

// Sentinel errors for decoding and framing.
var (
	// ErrLineTooLong reports a line longer than the reader's limit.
	ErrLineTooLong = errors.New("stratum: line too long")
	// ErrNotJSON reports a line that is not a JSON object.
	ErrNotJSON = errors.New("stratum: line is not a JSON object")
	// ErrNotMessage reports a JSON object with neither a method nor a result or error.
	ErrNotMessage = errors.New("stratum: object is neither a request nor a response")
	// ErrBadParams reports params of the wrong shape for their method.
	ErrBadParams = errors.New("stratum: bad params")
)
