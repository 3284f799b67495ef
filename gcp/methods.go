package gcp

import (
	"sort"
	"strings"
)

// MethodIDs returns every method id of the catalog, sorted.
func (c *Catalog) MethodIDs() []string {
	ids := make([]string, 0, len(c.ids))
	for id := range c.ids {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// HasMethod reports whether id is a method of the catalog.
func (c *Catalog) HasMethod(id string) bool {
	_, ok := c.ids[id]
	return ok
}

// MatchesAnyMethod reports whether some method id has s as a prefix,
// suffix or substring (kind "prefix", "suffix" or "contains").
func (c *Catalog) MatchesAnyMethod(s, kind string) bool {
	for id := range c.ids {
		switch kind {
		case "prefix":
			if strings.HasPrefix(id, s) {
				return true
			}
		case "suffix":
			if strings.HasSuffix(id, s) {
				return true
			}
		case "contains":
			if strings.Contains(id, s) {
				return true
			}
		}
	}
	return false
}

// SuggestMethod returns the method id closest to s (within a few edits,
// preferring ids of the same service), or "" when none is close.
func (c *Catalog) SuggestMethod(s string) string {
	svc, _, _ := strings.Cut(s, ".")
	best, bestDist := "", len(s)/4+2
	for _, sameService := range []bool{true, false} {
		for id := range c.ids {
			idSvc, _, _ := strings.Cut(id, ".")
			if (idSvc == svc) != sameService {
				continue
			}
			if d := editDistance(s, id, bestDist+1); d < bestDist || d == bestDist && best != "" && id < best {
				best, bestDist = id, d
			}
		}
		if best != "" {
			return best
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it is
// at least limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
