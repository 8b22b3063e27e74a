/* listener.c - the listening sockets: cleartext (with STARTTLS) and implicit TLS. */
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "host/log.h"
#include "host/server.h"
#include "host/session.h"
#include "host/tls.h"
#include "protocol/agbuf.h"
#include "protocol/imap_write.h"

struct ag_listener {
	struct ag_listener *next;
	struct ag_server *srv;
	struct evconnlistener *listener;
	int tls;
	char address[128];
};

void ag_listener_refuse(evutil_socket_t fd, const char *line)
{
	/* One line is enough: it fits the socket buffer of a new connection. */
	ssize_t w = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	evutil_closesocket(fd);
}

int ag_listener_take(evutil_socket_t fd, int stopping, int tcp)
{
	if (stopping) {
		evutil_closesocket(fd);
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	if (tcp) {
		/* Responses are whole lines written at once: no reason to hold them back. */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return 0;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *peer, int peer_len,
                      void *arg)
{
	(void)l;
	struct ag_listener *li = arg;
	struct ag_server *srv = li->srv;
	if (ag_listener_take(fd, srv->shutting_down, 1) != 0)
		return;
	unsigned open_now = atomic_load(&srv->total_sessions);
	if (open_now >= srv->cfg->max_connections) {
		struct agbuf bye = AGBUF_INIT;
		imap_write_status(&bye, NULL, IMAP_BYE, IMAP_CODE_NONE, "Too many connections, try again later.");
		ag_listener_refuse(fd, bye.data);
		agbuf_free(&bye);
		ag_log_warn("refused a connection on %s: %u connections open (max_connections)", li->address,
		            open_now);
		return;
	}
	if (ag_server_hand_off(srv, fd, peer, peer_len, li->tls) != 0)
		return; /* another loop serves it (or it was closed) */
	ag_listener_serve(srv, fd, peer, li->tls);
}

void ag_listener_serve(struct ag_server *srv, evutil_socket_t fd, const struct sockaddr *peer, int tls)
{
	struct bufferevent *bev;
	if (tls) {
		SSL *ssl = ag_tls_new_ssl(srv->tls);
		if (ssl == NULL) {
			evutil_closesocket(fd);
			return;
		}
		bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
		                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (bev == NULL) {
			SSL_free(ssl);
			evutil_closesocket(fd);
			return;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (bev == NULL) {
			evutil_closesocket(fd);
			return;
		}
	}
	ag_session_new(srv, bev, peer, tls);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	struct ag_listener *li = arg;
	int err = EVUTIL_SOCKET_ERROR();
	ag_log_error("accepting a connection on %s: %s", li->address, evutil_socket_error_to_string(err));
}

/* What open_one opens for: the server, and whether with implicit TLS. */
struct open_for {
	struct ag_server *srv;
	int tls;
};

static int open_one(void *arg, const char *address, char *err, size_t errlen)
{
	const struct open_for *o = arg;
	struct ag_server *srv = o->srv;
	int tls = o->tls;
	struct sockaddr_storage ss;
	int sslen = (int)sizeof(ss);
	if (evutil_parse_sockaddr_port(address, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(err, errlen, "%s: not an address:port", address);
		return -1;
	}
	struct ag_listener *li = calloc(1, sizeof(*li));
	if (li == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	li->srv = srv;
	li->tls = tls;
	snprintf(li->address, sizeof(li->address), "%s", address);
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	if (ss.ss_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	li->listener = evconnlistener_new_bind(srv->base, on_accept, li, flags, 128,
	                                       (struct sockaddr *)&ss, sslen);
	if (li->listener == NULL) {
		snprintf(err, errlen, "cannot listen on %s%s: %s", address, tls ? " (tls_listen)" : "",
		         strerror(errno));
		free(li);
		return -1;
	}
	evconnlistener_set_error_cb(li->listener, on_accept_error);
	li->next = srv->listeners;
	srv->listeners = li;
	ag_log_info("listening on %s%s", address, tls ? " (implicit TLS)" : "");
	return 0;
}

int ag_listeners_open(struct ag_server *srv, const char *list, int tls, char *err, size_t errlen)
{
	if (list == NULL)
		return 0;
	struct open_for o = { srv, tls };
	return ag_listen_each(list, "", open_one, &o, err, errlen);
}

int ag_listen_each(const char *list, const char *prefix,
                   int (*open)(void *arg, const char *address, char *err, size_t errlen), void *arg, char *err,
                   size_t errlen)
{
	size_t n;
	for (const char *p = list; (n = ag_config_word(&p)) > 0; p += n) {
		char address[128];
		if (ag_config_word_copy(p, n, address, sizeof(address)) != 0) {
			snprintf(err, errlen, "%saddress too long in %s", prefix, list);
			return -1;
		}
		if (open(arg, address, err, errlen) != 0)
			return -1;
	}
	return 0;
}

void ag_listeners_close(struct ag_server *srv)
{
	struct ag_listener *li = srv->listeners;
	while (li != NULL) {
		struct ag_listener *next = li->next;
		evconnlistener_free(li->listener);
		free(li);
		li = next;
	}
	srv->listeners = NULL;
}
