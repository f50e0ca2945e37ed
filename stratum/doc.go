// Package stratum speaks Stratum V1 as Bitcoin ASICs and pools speak it, and checks
// shares byte-exactly with double SHA-256. It has no sockets, no goroutines and no
// logging: it parses, encodes, hashes and returns errors, so it can be fuzzed and
// benchmarked on its own.
//
// # Byte order
//
// Every conversion between the wire and the block header is a place where
// implementations go wrong, so the rules are stated once here and again at each type.
//
//   - Hash holds 32 bytes in internal order: exactly as they are hashed and as they
//     sit in a header. Its String method prints display order (byte-reversed), the
//     form block explorers and RPC use. Merkle branch entries in mining.notify are
//     internal order; the merkle root goes into the header as computed.
//   - The prevhash in mining.notify is the header's 32 bytes with the bytes of each
//     4-byte word reversed. ParseNotify undoes the swap once per job.
//   - version, nbits, ntime and nonce travel as 8 hex digits: the big-endian text of
//     a uint32. The header stores each little-endian, so its 4 bytes are reversed.
//     The header's ntime is the one the miner submitted, not the job's.
//   - A hash is compared as a little-endian 256-bit integer. Target holds a 256-bit
//     integer big-endian (display order), so Target{} printed as hex reads like the
//     targets in the protocol documents.
//   - The coinbase is coinb1 || extranonce1 || extranonce2 || coinb2, all raw bytes:
//     the non-witness serialization. Extranonce2 is a byte string of exact length,
//     never an integer.
//   - Difficulty 1 is 0xFFFF·2^208 (bdiff), as set_difficulty uses; not 2^224-1.
//
// # Version rolling
//
// A share's header version is (job version &^ mask) | (version bits & mask) (BIP 310),
// and bits outside the negotiated mask are rejected rather than silently masked.
//
// # Memory
//
// A Decoder, a LineReader and a Checker are reused per connection and never shared
// between goroutines. Slices returned by a Decoder stay valid until its next Decode.
// Decoding a submit, checking a share and encoding a reply allocate nothing.
package stratum
