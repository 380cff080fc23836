package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// requester sends one GET and reads the whole answer.
type requester interface {
	get(path string) (status int, err error)
	close()
}

type stdClient struct {
	c    *http.Client
	base string
	auth string
	buf  []byte
}

func (s *stdClient) get(path string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
	req.Header.Set("Authorization", s.auth)
	res, err := s.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	for {
		if _, e := res.Body.Read(s.buf); e != nil {
			if errors.Is(e, io.EOF) {
				return res.StatusCode, nil
			}
			return res.StatusCode, e
		}
	}
}

func (s *stdClient) close() {}

// rawClient speaks just enough HTTP/1.1 for this server's answers (always
// with Content-Length) over one keep-alive connection, so the generator's
// CPU goes to requests, not to a general-purpose client.
type rawClient struct {
	host, auth string
	conn       net.Conn
	br         *bufio.Reader
	wbuf       []byte
	body       []byte
}

func (c *rawClient) get(path string) (int, error) {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.host)
		if err != nil {
			return 0, err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	b := c.wbuf[:0]
	b = append(b, "GET "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nAuthorization: "...)
	b = append(b, c.auth...)
	b = append(b, "\r\nUser-Agent: adclick-loadtest\r\n\r\n"...)
	c.wbuf = b
	if _, err := c.conn.Write(b); err != nil {
		c.close()
		return 0, err
	}
	code, err := c.read()
	if err != nil {
		c.close()
	}
	return code, err
}

func (c *rawClient) read() (int, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, closeAfter := -1, false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return code, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok {
			v = bytes.TrimSpace(v)
			switch {
			case bytes.EqualFold(k, []byte("Content-Length")):
				length, _ = strconv.Atoi(string(v))
			case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
				closeAfter = true
			}
		}
	}
	if length < 0 {
		return code, errors.New("answer without Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	if _, err := io.ReadFull(c.br, c.body[:length]); err != nil {
		return code, err
	}
	if closeAfter {
		c.close()
	}
	return code, nil
}

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
