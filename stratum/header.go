package stratum

import (
	"crypto/sha256"
	"encoding/binary"
)

// Header is a serialized 80-byte block header. Every integer field is stored
// little-endian; prevhash and merkle root are internal-order hashes.
//
//	offset  0  version      uint32 LE
//	offset  4  prevhash     32 bytes, internal order
//	offset 36  merkle root  32 bytes, internal order
//	offset 68  ntime        uint32 LE (the submitted ntime)
//	offset 72  nbits        uint32 LE
//	offset 76  nonce        uint32 LE
type Header [80]byte

// Set writes every field of the header.
func (h *Header) Set(version uint32, prev, root *Hash, ntime, nbits, nonce uint32) {
	binary.LittleEndian.PutUint32(h[0:4], version)
	copy(h[4:36], prev[:])
	copy(h[36:68], root[:])
	binary.LittleEndian.PutUint32(h[68:72], ntime)
	binary.LittleEndian.PutUint32(h[72:76], nbits)
	binary.LittleEndian.PutUint32(h[76:80], nonce)
}

// Version returns the header's version field.
func (h *Header) Version() uint32 { return binary.LittleEndian.Uint32(h[0:4]) }

// NTime returns the header's timestamp.
func (h *Header) NTime() uint32 { return binary.LittleEndian.Uint32(h[68:72]) }

// Nonce returns the header's nonce.
func (h *Header) Nonce() uint32 { return binary.LittleEndian.Uint32(h[76:80]) }

// SetNonce overwrites the nonce field, for miners searching nonces in place.
func (h *Header) SetNonce(n uint32) { binary.LittleEndian.PutUint32(h[76:80], n) }

// SetVersion overwrites the version field, for miners rolling version bits.
func (h *Header) SetVersion(v uint32) { binary.LittleEndian.PutUint32(h[0:4], v) }

// SetNTime overwrites the timestamp, for miners rolling ntime.
func (h *Header) SetNTime(t uint32) { binary.LittleEndian.PutUint32(h[68:72], t) }

// Hash returns sha256d of the header in internal order.
func (h *Header) Hash() Hash {
	first := sha256.Sum256(h[:])
	return sha256.Sum256(first[:])
}
