package sqlstore

// LookupCallers returns how many callers have asked for the lookup of hash in
// flight, the one that started it included; 0 if none is in flight. Tests use
// it to know that every caller has joined the lookup.
func (s *Store) LookupCallers(hash [32]byte) int { return s.keys.Waiting(hash) }
