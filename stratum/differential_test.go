package stratum_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashrelay/hashrelay/stratum"
)

// The differential test builds random blocks with btcd (github.com/btcsuite/btcd/wire/v2
// and chainhash/v2, test-only dependencies), takes each apart into the mining.notify and
// mining.submit lines a pool and a miner would exchange, and checks the share through
// the public API. Everything the check computes must agree with btcd byte for byte:
// the coinbase txid, the merkle root, the 80 header bytes and the block hash, and the
// block verdict must agree with the hash compared as an integer against nbits.
//
// wire/v2 has no merkle function, so the reference root is the full tree over every
// txid (coinbase first), built level by level with chainhash.DoubleHashH: it shares
// nothing with MerkleBranch and MerkleRoot, which fold the coinbase's path only.

// btcdIterations is the number of random blocks; the first ones use the counts in
// btcdTxCounts, the rest random counts up to btcdMaxTxs.
const (
	btcdIterations = 300
	btcdMaxTxs     = 3000
)

// btcdTxCounts are the numbers of non-coinbase transactions every run covers: empty
// blocks, odd levels (where Bitcoin duplicates the last hash) and powers of two with
// their neighbours, where the branch gains a level.
var btcdTxCounts = []int{
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129,
	255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 2047, 2048, 2049, 2999, 3000,
}

// btcdCase is one random block, built by btcd, with the Stratum view of it.
type btcdCase struct {
	n          int // transactions after the coinbase
	coinbase   *wire.MsgTx
	cbBytes    []byte // non-witness serialization
	txids      []chainhash.Hash
	en1, en2   []byte
	coinb1     []byte
	coinb2     []byte
	header     wire.BlockHeader // what btcd builds: the version the share must hash
	jobVersion uint32
	mask       uint32
	rolling    bool
	jobNTime   uint32
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randHash(rng *rand.Rand) chainhash.Hash {
	var h chainhash.Hash
	copy(h[:], randBytes(rng, len(h)))
	return h
}

// randTx returns a random non-coinbase transaction.
func randTx(rng *rand.Rand) *wire.MsgTx {
	tx := wire.NewMsgTx(int32(1 + rng.IntN(2)))
	for range 1 + rng.IntN(3) {
		prevTx := randHash(rng)
		prev := wire.NewOutPoint(&prevTx, rng.Uint32N(8))
		in := wire.NewTxIn(prev, randBytes(rng, rng.IntN(110)), nil)
		in.Sequence = rng.Uint32()
		tx.AddTxIn(in)
	}
	for range 1 + rng.IntN(3) {
		tx.AddTxOut(wire.NewTxOut(rng.Int64N(21e14), randBytes(rng, rng.IntN(40))))
	}
	tx.LockTime = rng.Uint32()
	return tx
}

// btcdNBits returns a valid compact target: regtest's (about half of all hashes meet
// it), a random one near it (any share of hashes), or real ones no random hash meets.
func btcdNBits(rng *rand.Rand) uint32 {
	switch rng.IntN(4) {
	case 0:
		return 0x207fffff
	case 1:
		return 0x20000000 | (1 + rng.Uint32N(0x7fffff))
	case 2:
		return 0x2100ff00 | rng.Uint32N(0x100) // 0x21: mantissa below 0x10000 fits
	}
	known := [...]uint32{0x1d00ffff, 0x1b04864c, 0x17029a8a, 0x1c2ac4af, 0x03123456, 0x02008000}
	return known[rng.IntN(len(known))]
}

// newBtcdCase builds a block with n transactions after the coinbase, drawn from pool
// (txids of random transactions, at least n of them).
func newBtcdCase(rng *rand.Rand, n int, pool []chainhash.Hash) *btcdCase {
	c := &btcdCase{n: n}
	c.en1 = randBytes(rng, rng.IntN(9)) // 0..8 bytes; p2pool sends none
	c.en2 = randBytes(rng, 1+rng.IntN(stratum.MaxExtranonce2Size))

	// Coinbase: scriptSig = BIP 34 height push || pool tag || en1 || en2 || tail.
	prefix := append([]byte{0x03}, randBytes(rng, 3+rng.IntN(20))...)
	tail := randBytes(rng, rng.IntN(40))
	script := append(append(append(append([]byte(nil), prefix...), c.en1...), c.en2...), tail...)
	cb := wire.NewMsgTx(int32(1 + rng.IntN(2)))
	in := wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, 0xffffffff), script, nil)
	if rng.IntN(2) == 0 {
		in.Sequence = rng.Uint32()
	}
	cb.AddTxIn(in)
	for range 1 + rng.IntN(4) {
		cb.AddTxOut(wire.NewTxOut(rng.Int64N(625e7), randBytes(rng, rng.IntN(80))))
	}
	cb.LockTime = rng.Uint32()
	c.coinbase = cb
	var buf bytes.Buffer
	if err := cb.SerializeNoWitness(&buf); err != nil {
		panic(err)
	}
	c.cbBytes = buf.Bytes()
	// version, input count, outpoint, script length, then the script.
	off := 4 + wire.VarIntSerializeSize(1) + 36 + wire.VarIntSerializeSize(uint64(len(script))) + len(prefix)
	end := off + len(c.en1) + len(c.en2)
	c.coinb1, c.coinb2 = c.cbBytes[:off], c.cbBytes[end:]

	// The block's other transactions: n distinct ones from the pool, in a new order.
	rng.Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
	c.txids = append([]chainhash.Hash(nil), pool[:n]...)

	versions := [...]uint32{0x20000000, 0x00000001, 0x00000002, 0x20000000 | rng.Uint32()&0x1fffe000, rng.Uint32()}
	c.jobVersion = versions[rng.IntN(len(versions))]
	masks := [...]uint32{0x1fffe000, 0xffffffff, rng.Uint32() & 0x1fffe000, rng.Uint32()}
	c.mask = masks[rng.IntN(len(masks))]
	c.rolling = rng.IntN(2) == 0
	version := c.jobVersion
	if c.rolling {
		// BIP 310: the job's bits outside the mask, the miner's inside it.
		version = c.jobVersion&^c.mask | rng.Uint32()&c.mask
	}
	c.jobNTime = rng.Uint32N(1<<32 - 1 - stratum.MaxNTimeRoll)
	leaves := append([]chainhash.Hash{cb.TxHash()}, c.txids...)
	c.header = wire.BlockHeader{
		Version:    int32(version),
		PrevBlock:  randHash(rng),
		MerkleRoot: fullMerkleRoot(leaves),
		Timestamp:  time.Unix(int64(c.jobNTime+rng.Uint32N(stratum.MaxNTimeRoll+1)), 0),
		Bits:       btcdNBits(rng),
		Nonce:      rng.Uint32(),
	}
	return c
}

// fullMerkleRoot computes Bitcoin's merkle root over every leaf: each level pairs
// neighbours and hashes them with chainhash.DoubleHashH, duplicating the last hash of
// an odd level.
func fullMerkleRoot(leaves []chainhash.Hash) chainhash.Hash {
	level := leaves
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level[:len(level):len(level)], level[len(level)-1])
		}
		next := make([]chainhash.Hash, len(level)/2)
		var pair [64]byte
		for i := range next {
			copy(pair[:32], level[2*i][:])
			copy(pair[32:], level[2*i+1][:])
			next[i] = chainhash.DoubleHashH(pair[:])
		}
		level = next
	}
	return level[0]
}

// compactToBig expands nbits as Bitcoin Core's arith_uint256::SetCompact does, for the
// valid (non-negative, non-overflowing) values the test uses.
func compactToBig(nbits uint32) *big.Int {
	size, word := nbits>>24, int64(nbits&0x007fffff)
	if size <= 3 {
		return big.NewInt(word >> (8 * (3 - size)))
	}
	return new(big.Int).Lsh(big.NewInt(word), uint(8*(size-3)))
}

// hashToBig reads a hash (internal order) as the little-endian integer the proof of
// work compares.
func hashToBig(h [32]byte) *big.Int {
	var r [32]byte
	for i := range h {
		r[i] = h[31-i]
	}
	return new(big.Int).SetBytes(r[:])
}

// lines renders the case as the notify a pool sends and the submit a miner answers.
func (c *btcdCase) lines(t *testing.T) (notify, submit []byte) {
	t.Helper()
	branch := stratum.MerkleBranch(toStratumHashes(c.txids))
	branchHex := make([]string, len(branch))
	for i := range branch {
		branchHex[i] = hex.EncodeToString(branch[i][:])
	}
	// Stratum sends the prevhash with the bytes of each 4-byte word reversed.
	prev := stratum.SwapWords(stratum.Hash(c.header.PrevBlock))
	for w := 0; w < 32; w += 4 {
		got := binary.LittleEndian.Uint32(prev[w:])
		if want := binary.BigEndian.Uint32(c.header.PrevBlock[w:]); got != want {
			t.Fatalf("SwapWords(%x): word %d = %08x; want %08x", c.header.PrevBlock[:], w/4, got, want)
		}
	}
	notify = line(t, nil, "mining.notify", []any{
		"j" + fmt.Sprint(c.n), hex.EncodeToString(prev[:]),
		hex.EncodeToString(c.coinb1), hex.EncodeToString(c.coinb2), branchHex,
		fmt.Sprintf("%08x", c.jobVersion), fmt.Sprintf("%08x", c.header.Bits),
		fmt.Sprintf("%08x", c.jobNTime), true,
	})
	params := []string{
		"worker.1", "j" + fmt.Sprint(c.n), hex.EncodeToString(c.en2),
		fmt.Sprintf("%08x", uint32(c.header.Timestamp.Unix())), fmt.Sprintf("%08x", c.header.Nonce),
	}
	if c.rolling {
		// cgminer's form: the rolled version's bits inside the mask.
		params = append(params, fmt.Sprintf("%08x", uint32(c.header.Version)&c.mask))
	}
	return notify, line(t, 4, "mining.submit", params)
}

func toStratumHashes(hs []chainhash.Hash) []stratum.Hash {
	r := make([]stratum.Hash, len(hs))
	for i := range hs {
		r[i] = stratum.Hash(hs[i])
	}
	return r
}

// TestShareCheckMatchesBtcd checks random shares end to end against btcd.
func TestShareCheckMatchesBtcd(t *testing.T) {
	rng := rand.New(rand.NewPCG(20250129, 881423))
	anyTarget, err := stratum.TargetFromDifficulty(1e-12) // clamps to 2^256-1
	if err != nil {
		t.Fatal(err)
	}
	// Hashing a few hundred thousand random transactions would dominate the run under
	// -race, so each block draws its transactions from one pool of btcdMaxTxs.
	pool := make([]chainhash.Hash, btcdMaxTxs)
	for i := range pool {
		pool[i] = randTx(rng).TxHash()
	}
	var blocks, misses, txs, rolled int
	for i := range btcdIterations {
		n := rng.IntN(rng.IntN(btcdMaxTxs) + 1)
		if i < len(btcdTxCounts) {
			n = btcdTxCounts[i]
		}
		c := newBtcdCase(rng, n, pool)
		notify, submit := c.lines(t)
		var d stratum.Decoder
		m, err := d.Decode(notify)
		if err != nil {
			t.Fatalf("case %d: decode %s: %v", i, notify, err)
		}
		j, err := m.Notify()
		if err != nil {
			t.Fatalf("case %d: notify %s: %v", i, notify, err)
		}
		if m, err = d.Decode(submit); err != nil {
			t.Fatalf("case %d: decode %s: %v", i, submit, err)
		}
		var s stratum.Submit
		if err := m.Submit(&s); err != nil {
			t.Fatalf("case %d: submit %s: %v", i, submit, err)
		}
		var chk stratum.Checker
		r := chk.Check(j, &s, &stratum.CheckParams{
			Extranonce1: c.en1, Extranonce2Size: len(c.en2), VersionMask: c.mask, ShareTarget: &anyTarget,
		})
		if !c.agrees(t, i, j, &chk, r) {
			t.Fatalf("case %d: %d txs, en1 %x, en2 %x, mask %08x, rolling %v, nbits %08x\nnotify %s\nsubmit %s",
				i, c.n, c.en1, c.en2, c.mask, c.rolling, c.header.Bits, notify, submit)
		}
		if r.Block {
			blocks++
		} else {
			misses++
		}
		txs += 1 + c.n
		if c.rolling {
			rolled++
		}
	}
	t.Logf("%d blocks, %d transactions, %d shares with version bits; %d met nbits", btcdIterations, txs, rolled, blocks)
	// Easy and real nbits are mixed so both outcomes of the block check are compared.
	if blocks == 0 || misses == 0 {
		t.Errorf("got %d blocks and %d non-blocks; want some of each", blocks, misses)
	}
}

// agrees reports, with got/want errors, whether our check of the case matches btcd.
func (c *btcdCase) agrees(t *testing.T, i int, j *stratum.Job, chk *stratum.Checker, r stratum.Result) bool {
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("case %d: "+format, append([]any{i}, args...)...)
		ok = false
	}
	if r.Verdict != stratum.VerdictAccepted {
		fail("verdict %v; want accepted at the easiest target", r.Verdict)
		return false
	}
	if j.PrevHash != stratum.Hash(c.header.PrevBlock) {
		fail("prevhash in header order %x; want %x", j.PrevHash[:], c.header.PrevBlock[:])
	}
	if got := chk.Coinbase(); !bytes.Equal(got, c.cbBytes) {
		fail("coinbase %x; want %x", got, c.cbBytes)
	}
	if got, want := stratum.DoubleSHA256(chk.Coinbase()), c.coinbase.TxHash(); got != stratum.Hash(want) {
		fail("coinbase txid %v; want %v", got, want)
	}
	h := chk.Header()
	if got, want := h[36:68], c.header.MerkleRoot[:]; !bytes.Equal(got, want) {
		fail("merkle root in header %x; want %x", got, want)
	}
	var want bytes.Buffer
	if err := c.header.Serialize(&want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h[:], want.Bytes()) {
		fail("header %x; want %x", h[:], want.Bytes())
	}
	if r.Version != uint32(c.header.Version) {
		fail("version %08x; want %08x", r.Version, uint32(c.header.Version))
	}
	bh := c.header.BlockHash()
	if r.Hash != stratum.Hash(bh) {
		fail("hash %v; want %v", r.Hash, bh)
	}
	if want := hashToBig(bh).Cmp(compactToBig(c.header.Bits)) <= 0; r.Block != want {
		fail("block %v; want %v (hash %v, nbits %08x)", r.Block, want, bh, c.header.Bits)
	}
	return ok
}

// TestTargetFromBitsMatchesCompact compares TargetFromBits with Bitcoin Core's compact
// rules on random nbits: negative, zero and overflowing values are refused (Core's
// CheckProofOfWork refuses them too) and every other value expands to the same integer.
func TestTargetFromBitsMatchesCompact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		nbits := rng.Uint32()
		if rng.IntN(2) == 0 { // exponents that matter: around 3 and around 32
			nbits = [...]uint32{0, 1, 2, 3, 4, 0x1d, 0x20, 0x21, 0x22, 0x23}[rng.IntN(10)]<<24 | rng.Uint32N(1<<24)
		}
		size, word := nbits>>24, nbits&0x007fffff
		negative := word != 0 && nbits&0x00800000 != 0
		overflow := word != 0 && (size > 34 || word > 0xff && size > 33 || word > 0xffff && size > 32)
		var want *big.Int
		if !negative && !overflow {
			want = compactToBig(nbits)
		}
		got, err := stratum.TargetFromBits(nbits)
		switch {
		case want == nil || want.Sign() == 0:
			if err == nil {
				t.Errorf("TargetFromBits(%08x) = %v; want an error", nbits, got)
			}
		case err != nil:
			t.Errorf("TargetFromBits(%08x): %v; want %x", nbits, err, want)
		case got.Int().Cmp(want) != 0:
			t.Errorf("TargetFromBits(%08x) = %v; want %064x", nbits, got, want)
		}
	}
}
