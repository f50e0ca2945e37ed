package stratum_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
)

// bigDiff1 is 0xFFFF·2^208, the bdiff difficulty-1 target, built here independently of
// the package.
var bigDiff1 = new(big.Int).Lsh(big.NewInt(0xFFFF), 208)

// bigMax is 2^256-1.
var bigMax = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// hashFromInt returns the hash whose little-endian reading is n (0 <= n < 2^256): the
// big-endian bytes of n, reversed.
func hashFromInt(n *big.Int) stratum.Hash {
	var be [32]byte
	n.FillBytes(be[:])
	var h stratum.Hash
	for i := range h {
		h[i] = be[31-i]
	}
	return h
}

// targetInt reads a target as an integer (big-endian bytes), without Target.Int.
func targetInt(t stratum.Target) *big.Int { return new(big.Int).SetBytes(t[:]) }

func zeros(n int) string { return strings.Repeat("0", n) }

func TestTargetFromBits(t *testing.T) {
	f := func(nbits uint32, want string) {
		t.Helper()
		got, err := stratum.TargetFromBits(nbits)
		if want == "" {
			if err != stratum.ErrBadBits {
				t.Errorf("TargetFromBits(%08x) = %v, %v; want ErrBadBits", nbits, got, err)
			}
			return
		}
		if len(want) != 64 {
			t.Fatalf("bad test: want %q is not 64 digits", want)
		}
		if err != nil || got.String() != want {
			t.Errorf("TargetFromBits(%08x) = %v, %v; want %s", nbits, got, err, want)
		}
	}
	f(0x1d00ffff, "00000000ffff"+zeros(52))       // difficulty 1, the genesis block's bits
	f(0x1c2ac4af, "000000002ac4af"+zeros(50))     // slush's testnet job bf
	f(0x1b04864c, "000000000004864c"+zeros(48))   // block 100002
	f(0x1a02816e, "00000000000002816e"+zeros(46)) // block 227836
	f(0x18013ce9, "0000000000000000013ce9"+zeros(42))
	f(0x17029a8a, "000000000000000000029a8a"+zeros(40)) // block 881423, as in the vector
	f(0x207fffff, "7fffff"+zeros(58))                   // regtest
	f(0x20123456, "123456"+zeros(58))                   // mantissa filling the top bytes
	f(0x22000001, "01"+zeros(62))                       // 2^248
	f(0x2100ffff, "ffff"+zeros(60))                     // 0xffff·2^240: the largest exponent-0x21 value
	f(0x05009234, zeros(56)+"92340000")
	f(0x04123456, zeros(56)+"12345600")
	// Exponents of 3 and below shift the mantissa right.
	f(0x03123456, zeros(58)+"123456")
	f(0x02123400, zeros(60)+"1234")
	f(0x02123456, zeros(60)+"1234") // low byte shifted out
	f(0x01120000, zeros(62)+"12")
	f(0x01123456, zeros(62)+"12")

	// Every real-block vector's nbits gives the network target recorded beside it.
	for _, v := range loadVectors(t) {
		bits, err := strconv.ParseUint(v.NotifyParams[6].(string), 16, 32)
		if err != nil {
			t.Fatalf("%s: nbits %v: %v", v.Name, v.NotifyParams[6], err)
		}
		if v.Expected.NetworkTargetHex != "" {
			f(uint32(bits), v.Expected.NetworkTargetHex)
		}
	}

	f(0x1d800000, "") // sign bit, zero mantissa
	f(0x1d800001, "") // sign bit
	f(0x04923456, "") // negative in Bitcoin Core's SetCompact
	f(0x01fedcba, "")
	f(0x1d000000, "") // zero mantissa
	f(0x00000000, "")
	f(0x00123456, "") // exponent 0: everything shifted out
	f(0x01003456, "") // shifted out to zero
	f(0x02000056, "")
	f(0x23000001, "") // 2^256: overflow
	f(0x21010000, "") // 2^256 again
	f(0x2200ffff, "") // 0xffff·2^248
	f(0x217fffff, "")
	f(0xff000001, "")
}

// bdiffTarget computes floor(0xFFFF·2^208 / d), clamped to 2^256-1, from d's exact
// binary expansion mant·2^exp: a second route to the same number as the package's
// big.Rat.
func bdiffTarget(d float64) *big.Int {
	frac, exp := math.Frexp(d) // d = frac·2^exp, 0.5 <= frac < 1
	mant := big.NewInt(int64(math.Ldexp(frac, 53)))
	exp -= 53 // d = mant·2^exp exactly
	n := new(big.Int).Set(bigDiff1)
	if exp < 0 {
		n.Lsh(n, uint(-exp))
	} else {
		mant.Lsh(mant, uint(exp))
	}
	n.Div(n, mant)
	if n.Cmp(bigMax) > 0 {
		n.Set(bigMax)
	}
	return n
}

func TestTargetFromDifficulty(t *testing.T) {
	f := func(d float64, want string) {
		t.Helper()
		got, err := stratum.TargetFromDifficulty(d)
		if err != nil || got.String() != want {
			t.Errorf("TargetFromDifficulty(%v) = %v, %v; want %s", d, got, err, want)
		}
	}
	f(1, "00000000ffff"+zeros(52))
	f(1024, "00000000003fffc0"+zeros(48))
	f(65536, "000000000000ffff"+zeros(48))
	f(0.5, "00000001fffe"+zeros(52))
	f(math.Ldexp(1, -32), "ffff"+zeros(60)) // 0xffff·2^240 still fits
	f(math.Ldexp(1, -33), strings.Repeat("f", 64))
	f(1e-30, strings.Repeat("f", 64)) // tiny difficulties clamp to 2^256-1
	f(5e-324, strings.Repeat("f", 64))
	// Beyond diff1 itself the target would be zero, met by no hash: refused.
	if _, err := stratum.TargetFromDifficulty(1e80); err != stratum.ErrBadDifficulty {
		t.Errorf("TargetFromDifficulty(1e80) error %v; want ErrBadDifficulty", err)
	}

	if d1 := stratum.Diff1Target(); d1.String() != "00000000ffff"+zeros(52) {
		t.Errorf("Diff1Target() = %v", d1)
	}
	if got, _ := stratum.TargetFromDifficulty(1); got != stratum.Diff1Target() {
		t.Errorf("TargetFromDifficulty(1) = %v; want Diff1Target() %v", got, stratum.Diff1Target())
	}

	// Exactly floor(diff1/d) for fractional and awkward difficulties.
	rng := rand.New(rand.NewPCG(1, 2))
	ds := []float64{0.001, 0.5, 0.01, 1.0 / 3, 3, 7, 1e-5, 1.5, 1000.001, 16384.75, 108105433845147, 1e15, 2.5e-9, math.Nextafter(1, 2), math.Nextafter(1, 0)}
	for i := 0; i < 200; i++ {
		ds = append(ds, math.Ldexp(1+rng.Float64(), rng.IntN(120)-40))
	}
	for _, d := range ds {
		got, err := stratum.TargetFromDifficulty(d)
		if want := bdiffTarget(d); err != nil || targetInt(got).Cmp(want) != 0 {
			t.Errorf("TargetFromDifficulty(%v) = %v, %v; want floor(diff1/d) = %064x", d, got, err, want)
		}
	}

	for _, d := range []float64{0, math.Copysign(0, -1), -1, -0.001, math.Inf(1), math.Inf(-1), math.NaN()} {
		if got, err := stratum.TargetFromDifficulty(d); err != stratum.ErrBadDifficulty || got != (stratum.Target{}) {
			t.Errorf("TargetFromDifficulty(%v) = %v, %v; want ErrBadDifficulty", d, got, err)
		}
	}
}

func TestTargetDifficultyRoundTrip(t *testing.T) {
	for _, d := range []float64{1, 0.001, 0.5, 1024, 65536, 1.0 / 3, 3, 108105433845147, 1e15, 1e-9} {
		tg, err := stratum.TargetFromDifficulty(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := tg.Difficulty(); !within(got, d, 1e-12) {
			t.Errorf("TargetFromDifficulty(%v).Difficulty() = %v; want %v within 1e-12", d, got, d)
		}
	}
	d1 := stratum.Diff1Target()
	if got := d1.Difficulty(); got != 1 {
		t.Errorf("Diff1Target().Difficulty() = %v; want exactly 1", got)
	}
	var zero stratum.Target
	if got := zero.Difficulty(); !math.IsInf(got, 1) {
		t.Errorf("zero target Difficulty() = %v; want +Inf", got)
	}
	// Network difficulty of block 881423 (nbits 17029a8a), as STRATUM.md §5.6 gives it.
	nt, _ := stratum.TargetFromBits(0x17029a8a)
	if got := nt.Difficulty(); !within(got, 108105433845147, 1e-12) {
		t.Errorf("difficulty of 17029a8a = %v; want 108105433845147", got)
	}
	// Int and TargetFromInt are inverses.
	back, err := stratum.TargetFromInt(nt.Int())
	if err != nil || back != nt {
		t.Errorf("TargetFromInt(Int()) = %v, %v; want %v", back, err, nt)
	}
	if _, err := stratum.TargetFromInt(new(big.Int).Add(bigMax, big.NewInt(1))); err == nil {
		t.Error("TargetFromInt(2^256) succeeded; want an error")
	}
	if _, err := stratum.TargetFromInt(big.NewInt(-1)); err == nil {
		t.Error("TargetFromInt(-1) succeeded; want an error")
	}
}

// TestMetByBoundary: a hash equal to the target meets it, one above does not, one
// below does, with the hash read little-endian.
func TestMetByBoundary(t *testing.T) {
	var targets []stratum.Target
	for _, d := range []float64{1, 1024, 65536, 0.001, 1.0 / 3, 1e12} {
		tg, _ := stratum.TargetFromDifficulty(d)
		targets = append(targets, tg)
	}
	for _, bits := range []uint32{0x1d00ffff, 0x17029a8a, 0x03123456, 0x207fffff} {
		tg, _ := stratum.TargetFromBits(bits)
		targets = append(targets, tg)
	}
	// Targets whose 64-bit words differ only low down.
	odd, _ := stratum.TargetFromInt(new(big.Int).Lsh(big.NewInt(1), 64))
	low, _ := stratum.TargetFromInt(big.NewInt(1))
	targets = append(targets, odd, low)

	one := big.NewInt(1)
	for _, tg := range targets {
		n := targetInt(tg)
		at := hashFromInt(n)
		above := hashFromInt(new(big.Int).Add(n, one))
		below := hashFromInt(new(big.Int).Sub(n, one))
		if !tg.MetBy(&at) {
			t.Errorf("target %v: hash equal to it does not meet it", tg)
		}
		if tg.MetBy(&above) {
			t.Errorf("target %v: hash one above (%v) meets it", tg, above)
		}
		if !tg.MetBy(&below) {
			t.Errorf("target %v: hash one below does not meet it", tg)
		}
	}

	// The extremes.
	maxT, _ := stratum.TargetFromInt(bigMax)
	var zeroT stratum.Target
	var zeroH stratum.Hash
	maxH := hashFromInt(bigMax)
	oneH := hashFromInt(one)
	if !maxT.MetBy(&maxH) || !zeroT.MetBy(&zeroH) || zeroT.MetBy(&oneH) {
		t.Errorf("extremes: max meets max %v, 0 meets 0 %v, 1 meets 0 %v; want true, true, false",
			maxT.MetBy(&maxH), zeroT.MetBy(&zeroH), zeroT.MetBy(&oneH))
	}

	// The byte order: a hash whose only set byte is the last (most significant when
	// read little-endian) is huge; one whose only set byte is the first is tiny.
	d1 := stratum.Diff1Target()
	var hi, lo stratum.Hash
	hi[31], lo[0] = 1, 0xff
	if d1.MetBy(&hi) || !d1.MetBy(&lo) {
		t.Errorf("diff-1 target: hash 00…01 (LE top byte) meets %v, ff00…00 (LE bottom byte) meets %v; want false, true", d1.MetBy(&hi), d1.MetBy(&lo))
	}

	// Against big.Int comparison on random pairs, with many leading zero bytes so that
	// every 64-bit word decides sometimes.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5000; i++ {
		a, b := randInt(rng), randInt(rng)
		if rng.IntN(4) == 0 {
			b.Set(a) // equal halves, then perturb one low word
			b.Xor(b, new(big.Int).Lsh(one, uint(rng.IntN(256))))
		}
		tg, _ := stratum.TargetFromInt(b)
		h := hashFromInt(a)
		if got, want := tg.MetBy(&h), a.Cmp(b) <= 0; got != want {
			t.Fatalf("MetBy: hash %064x target %064x: got %v; want %v", a, b, got, want)
		}
	}
}

// randInt returns a random integer below 2^256 with a random number of leading zero
// bytes.
func randInt(rng *rand.Rand) *big.Int {
	var b [32]byte
	for i := rng.IntN(33); i < 32; i++ {
		b[i] = byte(rng.Uint32())
	}
	return new(big.Int).SetBytes(b[:])
}

func TestHashDifficulty(t *testing.T) {
	diff1F := new(big.Float).SetPrec(512).SetInt(bigDiff1)
	want := func(n *big.Int) float64 {
		q := new(big.Float).SetPrec(512).Quo(diff1F, new(big.Float).SetPrec(512).SetInt(n))
		f, _ := q.Float64()
		return f
	}
	rng := rand.New(rand.NewPCG(5, 6))
	ints := []*big.Int{big.NewInt(1), big.NewInt(0xff), bigDiff1, bigMax, new(big.Int).Lsh(big.NewInt(1), 192), new(big.Int).Lsh(big.NewInt(1), 64), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(1))}
	for i := 0; i < 5000; i++ {
		if n := randInt(rng); n.Sign() > 0 {
			ints = append(ints, n)
		}
	}
	for _, n := range ints {
		h := hashFromInt(n)
		if got, w := stratum.HashDifficulty(&h), want(n); !within(got, w, 1e-12) {
			t.Errorf("HashDifficulty(%064x) = %v; want %v within 1e-12", n, got, w)
		}
	}
	h := hashFromInt(bigDiff1)
	if got := stratum.HashDifficulty(&h); got != 1 {
		t.Errorf("HashDifficulty(diff1) = %v; want exactly 1", got)
	}
	var zero stratum.Hash
	if got := stratum.HashDifficulty(&zero); !math.IsInf(got, 1) {
		t.Errorf("HashDifficulty(0) = %v; want +Inf", got)
	}
	// Block 100002's hash (STRATUM.md §6.2) is worth 53168.74.
	blk, err := stratum.ParseDisplayHash("0000000000013b8ab2cd513b0261a14096412195a72a0c4827d229dcc7e0f7af")
	if err != nil {
		t.Fatal(err)
	}
	if got := stratum.HashDifficulty(&blk); math.Abs(got-53168.74) > 0.005 {
		t.Errorf("HashDifficulty(block 100002) = %v; want 53168.74", got)
	}
}

// TestBdiffNotPdiff: Stratum difficulty is bdiff (difficulty 1 = 0xFFFF·2^208). Some
// software uses pdiff (difficulty 1 = 2^224-1), which is larger by the factor
// (2^224-1)/(0xFFFF·2^208) = 1.0000152590218967. The 0.0015 % difference is invisible
// on ordinary shares and flips every exact-boundary decision.
func TestBdiffNotPdiff(t *testing.T) {
	pdiff1 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 224), big.NewInt(1))
	factor, _ := new(big.Rat).SetFrac(pdiff1, bigDiff1).Float64()
	if factor != 1.0000152590218967 {
		t.Errorf("pdiff/bdiff factor = %.17g; want 1.0000152590218967", factor)
	}
	if d1 := stratum.Diff1Target(); targetInt(d1).Cmp(pdiff1) == 0 || targetInt(d1).Cmp(bigDiff1) != 0 {
		t.Errorf("Diff1Target() = %v; want 0xFFFF·2^208, not 2^224-1", d1)
	}

	for _, d := range []float64{1, 1024, 65536, 0.001, 16384.5} {
		tg, _ := stratum.TargetFromDifficulty(d)
		n := targetInt(tg)
		pdiffTarget := new(big.Int).Quo(new(big.Int).Mul(pdiff1, big.NewInt(1000)), big.NewInt(int64(d*1000)))

		// A hash exactly at the bdiff target is worth at least d and accepted at d.
		at := hashFromInt(n)
		if !tg.MetBy(&at) || stratum.HashDifficulty(&at) < d {
			t.Errorf("difficulty %v: hash at the target: met %v, worth %v; want met, worth >= %v", d, tg.MetBy(&at), stratum.HashDifficulty(&at), d)
		}
		// One above it is rejected here, yet a pdiff check would take it: the two
		// definitions disagree right at the boundary.
		above := new(big.Int).Add(n, big.NewInt(1))
		h := hashFromInt(above)
		if tg.MetBy(&h) {
			t.Errorf("difficulty %v: hash one above the bdiff target is accepted", d)
		}
		if above.Cmp(pdiffTarget) > 0 {
			t.Errorf("difficulty %v: a pdiff target %064x would also reject %064x; the test shows nothing", d, pdiffTarget, above)
		}
		// The pdiff target is the bdiff target times the factor.
		ratio, _ := new(big.Rat).SetFrac(pdiffTarget, n).Float64()
		if !within(ratio, factor, 1e-9) {
			t.Errorf("difficulty %v: pdiff/bdiff target ratio = %.17g; want %.17g", d, ratio, factor)
		}
	}
}
