package click

// DeadLetter is a rejected line with its machine-readable reason
// (docs/spec.md §1).
type DeadLetter struct {
	Line   string `json:"line"` // truncated to DeadLetterMaxLine bytes
	Reason string `json:"reason"`
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

// DeadLetterMaxLine bounds the copy of a rejected line kept in its dead letter.
const DeadLetterMaxLine = 1024
