package stratum

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// Hash is a SHA-256d digest in internal byte order: the bytes as hashed and as stored
// in a block header. String prints display order (byte-reversed).
type Hash [32]byte

// String returns the hash in display order, as block explorers print it.
func (h Hash) String() string {
	var r [32]byte
	for i := range h {
		r[i] = h[31-i]
	}
	return hex.EncodeToString(r[:])
}

// errHashLength reports a hash whose hex is not 64 digits.
var errHashLength = errors.New("stratum: hash is not 64 hex digits")

// ParseHash decodes 64 hex digits given in internal order (the order of merkle
// branch entries in mining.notify).
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, errHashLength
	}
	_, err := hex.Decode(h[:], []byte(s))
	return h, err
}

// ParseDisplayHash decodes 64 hex digits given in display order (RPC, explorers)
// into internal order.
func ParseDisplayHash(s string) (Hash, error) {
	h, err := ParseHash(s)
	if err != nil {
		return h, err
	}
	for i := 0; i < 16; i++ {
		h[i], h[31-i] = h[31-i], h[i]
	}
	return h, nil
}

// DoubleSHA256 returns sha256(sha256(b)) in internal order.
func DoubleSHA256(b []byte) Hash {
	first := sha256.Sum256(b)
	return sha256.Sum256(first[:])
}
