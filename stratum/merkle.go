package stratum

import "crypto/sha256"

// MerkleRoot folds a merkle branch onto the coinbase txid (both internal order):
// h = sha256d(h || b) for each b, the coinbase always the left operand. The result
// goes into the header as is, never reversed.
func MerkleRoot(coinbase Hash, branch []Hash) Hash {
	var buf [64]byte
	h := coinbase
	for i := range branch {
		copy(buf[:32], h[:])
		copy(buf[32:], branch[i][:])
		first := sha256.Sum256(buf[:])
		h = sha256.Sum256(first[:])
	}
	return h
}

// MerkleBranch returns the branch a pool sends in mining.notify for a block whose
// transactions after the coinbase have the given txids (internal order): at each
// level the sibling of the coinbase's path, duplicating the last hash of an odd level
// as Bitcoin does. An empty txids gives an empty branch.
func MerkleBranch(txids []Hash) []Hash {
	if len(txids) == 0 {
		return nil
	}
	// level[0] stands for the coinbase and is never read: its path is always index 0.
	level := make([]Hash, 1, len(txids)+1)
	level = append(level, txids...)
	var branch []Hash
	var buf [64]byte
	for len(level) > 1 {
		branch = append(branch, level[1])
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := level[:1]
		for i := 2; i < len(level); i += 2 {
			copy(buf[:32], level[i][:])
			copy(buf[32:], level[i+1][:])
			next = append(next, DoubleSHA256(buf[:]))
		}
		level = next
	}
	return branch
}
