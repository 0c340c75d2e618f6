package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// leanClient is a minimal HTTP/1.1 keep-alive client, one connection, for
// load generation: like wrk, it spends as little CPU as it can on the
// client side, which shares the machine with the server it measures.
// It handles only what the writer answers: a status line, headers with a
// Content-Length, and a body.
type leanClient struct {
	host  string
	token string // sent as a bearer token when set
	conn  net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	body  []byte
}

func dialLean(base string) (*leanClient, error) {
	host := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	return &leanClient{host: host, conn: conn, br: bufio.NewReaderSize(conn, 16<<10), bw: bufio.NewWriterSize(conn, 16<<10)}, nil
}

// dialLeanClients dials n clients that send token (none when empty), and
// returns them with a function that closes them all.
func dialLeanClients(base string, n int, token string) ([]*leanClient, func(), error) {
	clients := make([]*leanClient, 0, n)
	closeAll := func() {
		for _, c := range clients {
			c.close()
		}
	}
	for range n {
		c, err := dialLean(base)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		c.token = token
		clients = append(clients, c)
	}
	return clients, closeAll, nil
}

// header writes the request line and the headers every request carries.
func (c *leanClient) header(method, path string) {
	fmt.Fprintf(c.bw, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, c.host)
	if c.token != "" {
		fmt.Fprintf(c.bw, "Authorization: Bearer %s\r\n", c.token)
	}
}

// post sends body to path and returns the status and the response body,
// which stays valid until the next call.
func (c *leanClient) post(path string, body []byte) (int, []byte, error) {
	c.header("POST", path)
	fmt.Fprintf(c.bw, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	c.bw.Write(body)
	if err := c.bw.Flush(); err != nil {
		return 0, nil, err
	}
	status, length, err := c.readHead()
	if err != nil {
		return 0, nil, err
	}
	if length < 0 {
		return 0, nil, errors.New("response without Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	_, err = io.ReadFull(c.br, c.body)
	return status, c.body, err
}

// readHead reads a response's status line and headers, and returns the
// status and the Content-Length (-1 when there is none).
func (c *leanClient) readHead() (status, length int, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, 0, fmt.Errorf("malformed status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, 0, err
	}
	length = -1
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, 0, err
		}
		if len(bytes.TrimSpace(h)) == 0 {
			return status, length, nil
		}
		if name, value, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, 0, err
			}
		}
	}
}

func (c *leanClient) close() { c.conn.Close() }
