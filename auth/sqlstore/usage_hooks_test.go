package sqlstore

// LoseReplies makes each flush's commit, once done, report the error lost()
// returns (nil: the reply arrives), as if the database's reply to COMMIT had
// been lost on the way. Set it before the Usage is used.
func (u *Usage) LoseReplies(lost func() error) { u.afterCommit = lost }
