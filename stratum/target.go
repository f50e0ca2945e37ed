package stratum

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"math/bits"
)

// Target is a 256-bit proof-of-work target, big-endian (display order): Target{}
// printed as hex reads like "00000000ffff0000…". A hash meets it when the hash, read
// as a little-endian integer, is at most the target.
type Target [32]byte

// Errors returned when a target cannot be formed.
var (
	ErrBadBits       = errors.New("stratum: nbits is negative, zero or overflows 256 bits")
	ErrBadDifficulty = errors.New("stratum: difficulty must be a finite number above zero")
)

// diff1 is the difficulty-1 target, 0xFFFF·2^208 (bdiff), as set_difficulty uses.
var diff1 = new(big.Int).Lsh(big.NewInt(0xFFFF), 208)

// diff1Float is diff1 as a float64 (exact: 0xFFFF·2^208 fits in a mantissa).
var diff1Float = 0xFFFF * math.Pow(2, 208)

// maxTarget is 2^256-1, the easiest possible target.
var maxTarget = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// Diff1Target returns the difficulty-1 target.
func Diff1Target() Target {
	t, _ := TargetFromInt(diff1)
	return t
}

// TargetFromInt converts a non-negative integer below 2^256 to a Target.
func TargetFromInt(n *big.Int) (Target, error) {
	var t Target
	if n.Sign() < 0 || n.BitLen() > 256 {
		return t, ErrBadBits
	}
	n.FillBytes(t[:])
	return t, nil
}

// Int returns the target as an integer.
func (t *Target) Int() *big.Int {
	return new(big.Int).SetBytes(t[:])
}

// String returns the target as 64 hex digits, big-endian.
func (t Target) String() string {
	return hex.EncodeToString(t[:])
}

// TargetFromBits expands a compact nbits value (as carried in mining.notify, already
// parsed to a uint32) into a target: mantissa·256^(exponent-3). A set sign bit, a
// zero mantissa or a result above 2^256-1 is an error.
func TargetFromBits(nbits uint32) (Target, error) {
	exp := int(nbits >> 24)
	mant := int64(nbits & 0x007fffff)
	if nbits&0x00800000 != 0 || mant == 0 {
		return Target{}, ErrBadBits
	}
	n := big.NewInt(mant)
	if exp <= 3 {
		n.Rsh(n, uint(8*(3-exp)))
	} else {
		n.Lsh(n, uint(8*(exp-3)))
	}
	if n.Sign() == 0 {
		return Target{}, ErrBadBits
	}
	return TargetFromInt(n)
}

// TargetFromDifficulty returns floor(diff1 / d) exactly, for any finite d > 0
// including fractions; targets above 2^256-1 are clamped to it. A hash H meets the
// result exactly when diff1/H >= d, so the boundary is exact, not float-rounded.
func TargetFromDifficulty(d float64) (Target, error) {
	if !(d > 0) || math.IsInf(d, 0) {
		return Target{}, ErrBadDifficulty
	}
	r := new(big.Rat).SetFloat64(d) // exact: every float64 is a rational
	n := new(big.Int).Mul(diff1, r.Denom())
	n.Quo(n, r.Num())
	if n.Cmp(maxTarget) > 0 {
		n.Set(maxTarget)
	}
	if n.Sign() == 0 {
		return Target{}, ErrBadDifficulty // so high that no hash could meet it
	}
	return TargetFromInt(n)
}

// Difficulty returns diff1 / t as a float64 without allocating; an all-zero target has
// infinite difficulty.
func (t *Target) Difficulty() float64 {
	var words [4]uint64
	for w := 0; w < 4; w++ {
		words[w] = binary.BigEndian.Uint64(t[8*w:])
	}
	return diff1Float / wordsToFloat(&words)
}

// MetBy reports whether h, read as a little-endian integer, is at most t. It compares
// 64 bits at a time from the most significant end and allocates nothing.
func (t *Target) MetBy(h *Hash) bool {
	for w := 0; w < 4; w++ {
		hv := binary.LittleEndian.Uint64(h[24-8*w:])
		tv := binary.BigEndian.Uint64(t[8*w:])
		if hv != tv {
			return hv < tv
		}
	}
	return true
}

// HashDifficulty returns diff1 / H for a hash H read as a little-endian integer, the
// share difficulty pools credit. It rounds to float64 precision and allocates
// nothing; a zero hash has infinite difficulty.
func HashDifficulty(h *Hash) float64 {
	var words [4]uint64
	for w := 0; w < 4; w++ {
		words[w] = binary.LittleEndian.Uint64(h[24-8*w:]) // words[0] most significant
	}
	return diff1Float / wordsToFloat(&words)
}

// wordsToFloat converts a 256-bit integer given as four 64-bit words, most
// significant first, to a float64: the top 64 significant bits rounded to nearest,
// lower bits dropped (a relative error below 2^-52).
func wordsToFloat(words *[4]uint64) float64 {
	for w := 0; w < 4; w++ {
		if words[w] == 0 {
			continue
		}
		lz := bits.LeadingZeros64(words[w])
		top := words[w] << uint(lz)
		if lz > 0 && w < 3 {
			top |= words[w+1] >> uint(64-lz)
		}
		// top holds bits [255-64w-lz .. 192-64w-lz], so the value is ≈ top·2^(192-64w-lz).
		return math.Ldexp(float64(top), 192-64*w-lz)
	}
	return 0
}
