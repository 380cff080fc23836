//go:build crashtop

package main

// checkChaosTops compares the chaos run's top lists too (go test -tags crashtop).
const checkChaosTops = true
