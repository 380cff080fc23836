package queryapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
)

// net/http answers a request it cannot parse (431 for headers over
// MaxHeaderBytes, 400 for a malformed request line or header, 501 for an
// unknown transfer coding) itself, before any handler runs, as text/plain.
// It writes that answer straight to the connection in one Write, always
// shaped "HTTP/1.1 <status>" + plainErrorHeaders + text. jsonErrorListener
// hands net/http connections that replace such a write with the same status
// as the API's JSON error. A handler's answer never matches: it always
// carries X-Request-ID before Content-Type, and net/http adds a Date header.
const plainErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// An unsupported Expect header is refused with an empty 417 through the
// response writer, also before any handler; this server never answers 417
// itself.
const expectationFailed = "HTTP/1.1 417 "

type jsonErrorListener struct {
	net.Listener
	s *Server
}

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c, s: l.s}, nil
}

type jsonErrorConn struct {
	net.Conn
	s *Server
}

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	status, ok := plainErrorStatus(p)
	if !ok {
		return c.Conn.Write(p)
	}
	code, detail := codeBadRequest, "the request is not valid HTTP/1.1; nothing was processed"
	switch status {
	case 431:
		code, detail = codeHeadersTooLarge, "the request's headers are larger than the server accepts"
	case 501:
		code, detail = codeNotImplemented, "the request uses a transfer coding the server does not implement"
	case 417:
		detail = "the server does not support this Expect header"
	}
	id := c.s.ids.next()
	body, _ := json.Marshal(errorBody{Error: code, Detail: detail})
	body = append(body, '\n')
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + statusText(status) + "\r\n")
	b.WriteString("Content-Type: application/json\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n")
	b.WriteString("X-Request-ID: " + id + "\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	c.s.log.Info("http request rejected before routing",
		slog.String("request_id", id), slog.Int("status", status), slog.String("remote", c.RemoteAddr().String()))
	if _, err := c.Conn.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite keeps net/http's half-close after a 431 (it lets the client
// read the answer while it is still sending).
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// plainErrorStatus recognises net/http's own error answers.
func plainErrorStatus(p []byte) (int, bool) {
	const prefix = "HTTP/1.1 "
	if len(p) < len(prefix)+3 || string(p[:len(prefix)]) != prefix {
		return 0, false
	}
	status, err := strconv.Atoi(string(p[len(prefix) : len(prefix)+3]))
	if err != nil || status < 400 {
		return 0, false
	}
	if bytes.HasPrefix(p, []byte(expectationFailed)) {
		return status, true
	}
	line, _, ok := bytes.Cut(p, []byte("\r\n"))
	if !ok || !bytes.HasPrefix(p[len(line):], []byte(plainErrorHeaders)) {
		return 0, false
	}
	return status, true
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}
