package collective

import "testing"

// TestDoubleBinaryTree checks that both trees span every member with
// consistent parent and child links, for every size up to 70.
func TestDoubleBinaryTree(t *testing.T) {
	for n := 1; n <= 70; n++ {
		for which := range 2 {
			roots := 0
			for r := 0; r < n; r++ {
				p, c0, c1 := dtree(n, r, which)
				if p < 0 {
					roots++
				} else {
					_, pc0, pc1 := dtree(n, p, which)
					if pc0 != r && pc1 != r {
						t.Fatalf("n=%d tree %d: %d's parent %d does not list it (children %d %d)", n, which, r, p, pc0, pc1)
					}
				}
				for _, c := range []int{c0, c1} {
					if c == -1 {
						continue
					}
					if c < 0 || c >= n || c == r {
						t.Fatalf("n=%d tree %d: %d has child %d", n, which, r, c)
					}
					if cp, _, _ := dtree(n, c, which); cp != r {
						t.Fatalf("n=%d tree %d: %d lists child %d whose parent is %d", n, which, r, c, cp)
					}
				}
			}
			if roots != 1 {
				t.Fatalf("n=%d tree %d: %d roots", n, which, roots)
			}
			// Every member reaches the root (no cycles).
			for r := 0; r < n; r++ {
				v, hops := r, 0
				for {
					p, _, _ := dtree(n, v, which)
					if p < 0 {
						break
					}
					v, hops = p, hops+1
					if hops > n {
						t.Fatalf("n=%d tree %d: cycle from %d", n, which, r)
					}
				}
			}
		}
	}
}
