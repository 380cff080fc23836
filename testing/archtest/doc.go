// Package archtest holds tests, run by make test, that keep the repository's
// shape: which packages may use Apache Beam, how long files and functions may
// grow, and that nothing refers to files outside the repository.
package archtest
