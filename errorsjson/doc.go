// Package errorsjson answers every error of a gatehouse stack in one JSON
// shape, with the request's id. The shape, with Content-Type:
// application/json:
//
//	{"error": "Human-readable description of what went wrong", "request_id": "…"}
//
// It is the ground floor of gatehouse: the auth, ratelimit and upstream
// packages write their refusals through [Write], and it imports none of them.
//
// Besides the writer it has the pieces that make sure nothing a server answers is
// HTML or plain text, each a plain net/http middleware:
//
//	h := errorsjson.RequestID(          // X-Request-ID on every response, id in the context
//		errorsjson.Recover(logger)(     // a panic becomes a logged 500 JSON error
//			errorsjson.Rewrite(mux)))   // http.Error, ServeMux's 404/405 become JSON
//
// and, in front of a ServeMux, [CanonicalPath] (404 where ServeMux would
// redirect an unclean path with an empty body) and [MaxHeaderBytes] (a JSON
// 431 below the http.Server's own text/plain one).
//
// The messages of the API's status table (docs/contract.md in the repository,
// the contract the stack answers by) are the Msg constants, so that a caller
// can match on them and a test can assert them exactly.
//
// Each middleware panics when it is given a nil handler to wrap, as
// http.Handle does, rather than at the first request (docs/adopting.md in the
// repository gives the rule, the same in every package of gatehouse).
package errorsjson
