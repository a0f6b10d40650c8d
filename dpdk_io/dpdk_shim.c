/* Shrike's C shim over DPDK: EAL start-up, one rx port, and batch delivery into caller buffers.
 *
 * The shim keeps no global state: everything about an open port lives in a
 * `struct shrike_port` the Python side allocates and owns. Every function
 * returns 0 (or a count) on success and a negative errno on failure; the
 * Python side checks each one. `shrike_rx_batch` is the only call on the hot
 * path: it loops rte_eth_rx_burst, copies packet bytes into the caller's
 * buffer, frees the mbufs, and returns once per batch, not once per burst.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>

#define SHRIKE_MAX_BURST 1024

/* Which DPDK call failed in shrike_port_open, so Python can name it. */
enum shrike_open_step {
	SHRIKE_STEP_NONE = 0,
	SHRIKE_STEP_PORT_INVALID,
	SHRIKE_STEP_DEV_INFO,
	SHRIKE_STEP_QUEUE_COUNT,
	SHRIKE_STEP_MEMPOOL,
	SHRIKE_STEP_CONFIGURE,
	SHRIKE_STEP_ADJUST_DESC,
	SHRIKE_STEP_RX_QUEUE_SETUP,
	SHRIKE_STEP_START,
};

struct shrike_port {
	uint16_t port_id;
	uint16_t nb_rx_queues;
	uint16_t max_rx_queues;
	uint16_t rx_ring_size;
	int failed_step;
	int started;
	char driver_name[64];
	/* Rx timestamp dynfield (registered by drivers such as net_pcap); -1 when absent. */
	int timestamp_offset;
	uint64_t timestamp_flag;
	/* Nanoseconds per dynfield unit; 0 means always use the host clock. */
	uint64_t timestamp_unit_ns;
	struct rte_mempool *pool;
	/* A burst may hold more packets than the caller's buffer has room for:
	 * the rest wait here for the next call instead of being dropped. */
	uint16_t next_queue;
	uint16_t pending_head;
	uint16_t pending_count;
	int64_t pending_host_ns;
	struct rte_mbuf *pending[SHRIKE_MAX_BURST];
};

struct shrike_rx_request {
	uint8_t *data;
	uint64_t data_capacity;
	int64_t *offsets;
	int32_t *lengths;
	int64_t *timestamps_ns;
	uint32_t max_packets;
	uint16_t burst_size;
	uint32_t idle_polls;
};

struct shrike_rx_result {
	uint32_t packets;
	uint64_t bytes;
	uint32_t host_timestamps;
	uint32_t stopped_idle;
	uint64_t polls;
};

struct shrike_port_stats {
	uint64_t ipackets;
	uint64_t ibytes;
	uint64_t imissed;
	uint64_t ierrors;
	uint64_t rx_nombuf;
};

static int64_t host_clock_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static int negative_rte_errno(int fallback)
{
	return rte_errno > 0 ? -rte_errno : -fallback;
}

int shrike_eal_init(int argc, char **argv)
{
	int ret;

	/* EAL logs to stdout by default; Shrike's stdout carries results. */
	rte_openlog_stream(stderr);
	ret = rte_eal_init(argc, argv);
	fflush(NULL);
	if (ret < 0)
		return negative_rte_errno(EINVAL);
	return ret;
}

const char *shrike_runtime_dir(void)
{
	return rte_eal_get_runtime_dir();
}

const char *shrike_strerror(int err)
{
	return rte_strerror(err < 0 ? -err : err);
}

int shrike_port_count(void)
{
	return (int)rte_eth_dev_count_avail();
}

int shrike_port_by_name(const char *name)
{
	uint16_t port_id;
	int ret = rte_eth_dev_get_port_by_name(name, &port_id);

	return ret < 0 ? ret : (int)port_id;
}

int shrike_port_open(struct shrike_port *p, uint16_t port_id, uint16_t nb_rx_queues,
		     uint16_t rx_ring_size, uint32_t nb_mbufs, uint32_t cache_size)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	char pool_name[RTE_MEMPOOL_NAMESIZE];
	uint16_t nb_rxd = rx_ring_size;
	uint16_t nb_txd = 0;
	int socket;
	int ret;
	uint16_t q;

	memset(p, 0, sizeof(*p));
	p->port_id = port_id;
	p->timestamp_offset = -1;

	if (!rte_eth_dev_is_valid_port(port_id)) {
		p->failed_step = SHRIKE_STEP_PORT_INVALID;
		return -ENODEV;
	}
	ret = rte_eth_dev_info_get(port_id, &info);
	if (ret != 0) {
		p->failed_step = SHRIKE_STEP_DEV_INFO;
		return ret;
	}
	snprintf(p->driver_name, sizeof(p->driver_name), "%s",
		 info.driver_name ? info.driver_name : "");
	p->max_rx_queues = info.max_rx_queues;
	if (nb_rx_queues == 0 || nb_rx_queues > info.max_rx_queues) {
		p->failed_step = SHRIKE_STEP_QUEUE_COUNT;
		return -EINVAL;
	}

	socket = rte_eth_dev_socket_id(port_id);
	if (socket < 0)
		socket = (int)rte_socket_id();
	snprintf(pool_name, sizeof(pool_name), "shrike_rx_%u", port_id);
	p->pool = rte_pktmbuf_pool_create(pool_name, nb_mbufs, cache_size, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (p->pool == NULL) {
		p->failed_step = SHRIKE_STEP_MEMPOOL;
		return negative_rte_errno(ENOMEM);
	}

	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_configure(port_id, nb_rx_queues, 0, &conf);
	if (ret != 0) {
		p->failed_step = SHRIKE_STEP_CONFIGURE;
		goto fail;
	}
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &nb_rxd, &nb_txd);
	if (ret != 0) {
		p->failed_step = SHRIKE_STEP_ADJUST_DESC;
		goto fail;
	}
	p->rx_ring_size = nb_rxd;
	for (q = 0; q < nb_rx_queues; q++) {
		ret = rte_eth_rx_queue_setup(port_id, q, nb_rxd, (unsigned int)socket, NULL,
					     p->pool);
		if (ret != 0) {
			p->failed_step = SHRIKE_STEP_RX_QUEUE_SETUP;
			goto fail;
		}
	}
	ret = rte_eth_dev_start(port_id);
	if (ret != 0) {
		p->failed_step = SHRIKE_STEP_START;
		goto fail;
	}
	p->started = 1;
	p->nb_rx_queues = nb_rx_queues;

	/* Drivers that stamp packets (net_pcap always does) register these at probe. */
	p->timestamp_offset = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
	ret = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
	p->timestamp_flag = ret >= 0 ? (UINT64_C(1) << ret) : 0;
	if (p->timestamp_flag == 0)
		p->timestamp_offset = -1;
	return 0;

fail:
	rte_mempool_free(p->pool);
	p->pool = NULL;
	return ret < 0 ? ret : -ret;
}

int shrike_port_has_rx_timestamps(const struct shrike_port *p)
{
	return p->timestamp_offset >= 0;
}

void shrike_port_use_timestamps(struct shrike_port *p, uint64_t unit_ns)
{
	p->timestamp_unit_ns = p->timestamp_offset >= 0 ? unit_ns : 0;
}

/* Copy one (possibly chained) mbuf into dst; the caller checked the room. */
static void copy_packet(uint8_t *dst, const struct rte_mbuf *m)
{
	for (; m != NULL; m = m->next) {
		memcpy(dst, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len);
		dst += m->data_len;
	}
}

/* Copy pending mbufs into the request until they run out or the batch is full.
 * Returns 1 when the batch is full, 0 when the pending burst is used up, -E2BIG
 * when a packet cannot fit even an empty buffer. Copied mbufs are freed in bulk. */
static int drain_pending(struct shrike_port *p, const struct shrike_rx_request *req,
			 uint32_t *n, uint64_t *used, struct shrike_rx_result *res)
{
	const uint16_t first = p->pending_head;
	const int use_dynfield = p->timestamp_unit_ns != 0;
	int full = 0;

	while (p->pending_count > 0) {
		struct rte_mbuf *m = p->pending[p->pending_head];
		uint32_t len = rte_pktmbuf_pkt_len(m);

		if (*used + len > req->data_capacity) {
			full = *n == 0 ? -E2BIG : 1;
			break;
		}
		if (p->pending_count > 1)
			rte_prefetch0(rte_pktmbuf_mtod(p->pending[p->pending_head + 1], void *));
		copy_packet(req->data + *used, m);
		req->offsets[*n] = (int64_t)*used;
		req->lengths[*n] = (int32_t)len;
		if (use_dynfield && (m->ol_flags & p->timestamp_flag)) {
			req->timestamps_ns[*n] = (int64_t)(*RTE_MBUF_DYNFIELD(
				m, p->timestamp_offset, rte_mbuf_timestamp_t *) * p->timestamp_unit_ns);
		} else {
			req->timestamps_ns[*n] = p->pending_host_ns;
			res->host_timestamps++;
		}
		*used += len;
		(*n)++;
		p->pending_head++;
		p->pending_count--;
		if (*n == req->max_packets) {
			full = 1;
			break;
		}
	}
	rte_pktmbuf_free_bulk(&p->pending[first], (unsigned int)(p->pending_head - first));
	return full;
}

int shrike_rx_batch(struct shrike_port *p, const struct shrike_rx_request *req,
		    struct shrike_rx_result *res)
{
	uint64_t used = 0;
	uint32_t n = 0;
	uint32_t idle = 0;
	uint16_t burst = req->burst_size;
	int full;

	memset(res, 0, sizeof(*res));
	if (!p->started)
		return -EBADF;
	if (burst == 0 || burst > SHRIKE_MAX_BURST || req->max_packets == 0)
		return -EINVAL;

	for (;;) {
		if (p->pending_count == 0) {
			uint16_t got = rte_eth_rx_burst(p->port_id, p->next_queue, p->pending,
							burst);

			p->next_queue = (uint16_t)((p->next_queue + 1) % p->nb_rx_queues);
			res->polls++;
			if (got == 0) {
				if (++idle >= req->idle_polls) {
					res->stopped_idle = 1;
					break;
				}
				continue;
			}
			idle = 0;
			p->pending_head = 0;
			p->pending_count = got;
			p->pending_host_ns = host_clock_ns();
		}
		full = drain_pending(p, req, &n, &used, res);
		if (full < 0)
			return full;
		if (full)
			break;
	}
	res->packets = n;
	res->bytes = used;
	return 0;
}

int shrike_port_stats(const struct shrike_port *p, struct shrike_port_stats *out)
{
	struct rte_eth_stats st;
	int ret = rte_eth_stats_get(p->port_id, &st);

	if (ret != 0)
		return ret;
	out->ipackets = st.ipackets;
	out->ibytes = st.ibytes;
	out->imissed = st.imissed;
	out->ierrors = st.ierrors;
	out->rx_nombuf = st.rx_nombuf;
	return 0;
}

int shrike_port_close(struct shrike_port *p)
{
	int stop_ret = 0;
	int close_ret = 0;

	while (p->pending_count > 0) {
		rte_pktmbuf_free(p->pending[p->pending_head++]);
		p->pending_count--;
	}
	if (p->started) {
		stop_ret = rte_eth_dev_stop(p->port_id);
		close_ret = rte_eth_dev_close(p->port_id);
		p->started = 0;
	}
	/* Only free the pool once the port no longer references it. */
	if (p->pool != NULL && stop_ret == 0 && close_ret == 0) {
		rte_mempool_free(p->pool);
		p->pool = NULL;
	}
	return stop_ret != 0 ? stop_ret : close_ret;
}
