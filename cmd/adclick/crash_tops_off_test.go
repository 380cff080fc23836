//go:build !crashtop

package main

// checkChaosTops is off by default: see TestCrash.
const checkChaosTops = false
