import ArgumentParser
import Foundation
import Synchronization
import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// The streamer bench's clients: plain sockets read by one thread with epoll and read(2).
///
/// The clients share the machine's 2 cores with the streamer, so what they cost per event shows up
/// as fan-out latency. A NIO channel per socket cost the reader more CPU per event than either of
/// the streamer's event loops; this reader does a read and a byte scan per socket. Each client
/// records when the bytes of its n-th `todo-event` arrived (events arrive in order, exactly once):
/// both when its socket received them (the kernel's receive timestamp, `SO_TIMESTAMPNS`) and when
/// this reader read them.
final class EpollSSEClients: @unchecked Sendable {
    /// CLOCK_REALTIME nanoseconds (the receive timestamps' clock).
    struct Arrival {
        /// The bytes reached the client's socket: on loopback, the moment the streamer's write(2)
        /// handed them to the network. It is the time of the last segment of the read, so an event
        /// that shares a read with a later one is timed late, never early. 0 if the kernel gave no
        /// timestamp.
        var received: UInt64
        /// The reader thread read them (later when the reader is waiting for a core).
        var read: UInt64
    }

    private struct Client {
        let fd: Int32
        let eventsBefore: Int
        var status = 0
        var head: [UInt8] = []
        var matched = 0
        var arrivals: [Arrival] = []
        var closed = false
    }

    private static let marker = Array("event: todo-event".utf8)
    private let port: UInt16
    private let host: String
    /// The loopback address the sockets connect from (nil: the kernel's choice); each source
    /// address has its own ephemeral ports.
    private let source: String?
    private let request: [UInt8]
    private let epoll: Int32
    private let clients = Mutex<[Client]>([])
    private let running = Atomic<Bool>(true)
    /// Streams that have neither their status nor been closed yet.
    private let waiting = Atomic<Int>(0)
    /// Whether the reader should run at SCHED_IDLE (see `EpollSSEClientGroup.runWhenIdle`), and
    /// what its thread last applied: 0 (ordinary), 1 (idle), or −errno when the change failed.
    let runWhenIdle = Atomic<Bool>(false)
    let appliedPriority = Atomic<Int32>(0)
    private var reader: Thread?

    init(port: Int, path: String, token: String, host: String = "127.0.0.1", source: String? = nil) {
        self.port = UInt16(port)
        self.host = host
        self.source = source
        request = Array(SSEClients.request(host: host, port: port, path: path, token: token).utf8)
        epoll = epoll_create1(0)
        let thread = Thread { [self] in readLoop() }
        thread.name = "sse-reader"
        thread.start()
        reader = thread
    }

    /// Open streams (status 200).
    var count: Int { clients.withLock { $0.filter { $0.status == 200 && !$0.closed }.count } }

    /// Opens `count` more streams, at most 200 waiting for their status at a time (the listen
    /// backlog is 1024). Returns how many were refused (status other than 200).
    func open(_ count: Int, eventsBefore: Int, atOnce: Int = 200) async throws -> (opened: Int, refused: Int) {
        let first = clients.withLock { $0.count }
        let started = Date()
        for index in 0..<count {
            while waiting.load(ordering: .relaxed) >= atOnce {
                try await Task.sleep(for: .milliseconds(1))
            }
            let fd = try connectAndSend()
            waiting.wrappingAdd(1, ordering: .relaxed)
            let slot = clients.withLock { clients in
                clients.append(Client(fd: fd, eventsBefore: eventsBefore))
                return clients.count - 1
            }
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.u64 = UInt64(slot)
            guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 else { throw ValidationError("epoll_ctl: errno \(errno)") }
            if (index + 1) % 2500 == 0 { print("  \(first + index + 1) streams opening (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)") }
        }
        while waiting.load(ordering: .relaxed) > 0 {
            try await Task.sleep(for: .milliseconds(5))
        }
        let refused = clients.withLock { $0[first...].filter { $0.status != 200 }.count }
        return (count - refused, refused)
    }

    /// How many streams were refused with each status (−1: no HTTP status line, 0: none yet).
    var refusedStatuses: [Int: Int] {
        clients.withLock { clients in clients.filter { $0.status != 200 }.reduce(into: [:]) { $0[$1.status, default: 0] += 1 } }
    }

    /// Every open client's arrival times (with the events published before it opened), once each
    /// has seen every event up to `events`.
    /// With `skippingClosed`, a client the server closed counts as done with what it received.
    func arrivals(waitingFor events: Int, timeout: Duration, skippingClosed: Bool = false) async throws -> [(Int, [Arrival])] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (complete, all, closed) = clients.withLock { clients -> (Bool, [(Int, [Arrival])], Int) in
                let open = clients.filter { $0.status == 200 }
                let done = open.allSatisfy { $0.arrivals.count >= events - $0.eventsBefore || (skippingClosed && $0.closed) }
                return (done, done ? open.map { ($0.eventsBefore, $0.arrivals) } : [], open.filter(\.closed).count)
            }
            if complete { return all }
            guard ContinuousClock.now < deadline else {
                throw ValidationError("not every stream received \(events) events within \(timeout) (\(closed) closed by the server)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    func closeAll() {
        running.store(false, ordering: .relaxed)
        clients.withLock { clients in
            for client in clients where !client.closed { Glibc.close(client.fd) }
            clients.removeAll()
        }
    }

    private func connectAndSend() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        if let source {
            // The port is picked at connect(2), per destination, rather than reserved at bind(2).
            var on: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_IP), 24 /* IP_BIND_ADDRESS_NO_PORT */, &on, socklen_t(MemoryLayout<Int32>.size))
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { Glibc.close(fd); throw ValidationError("bind \(source): errno \(errno)") }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { Glibc.close(fd); throw ValidationError("connect: errno \(errno)") }
        guard bench_enable_receive_timestamps(fd) == 0 else { Glibc.close(fd); throw ValidationError("SO_TIMESTAMPNS: errno \(errno)") }
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == request.count else { Glibc.close(fd); throw ValidationError("send: errno \(errno)") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    private func readLoop() {
        var idle = false
        var events = [epoll_event](repeating: epoll_event(), count: 1024)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { buffer.deallocate() }
        let marker = Self.marker
        // While bytes are arriving the reader polls, sleeping briefly when nothing is ready, rather
        // than blocking in epoll_wait: a blocked reader is woken by each socket that becomes ready,
        // and on loopback that wake-up runs in the streamer's write(2) (a tenth of an event loop's
        // time in a fan-out). Clients on other machines cost a server no such wake-ups.
        var lastArrival = DispatchTime.now().uptimeNanoseconds
        while running.load(ordering: .relaxed) {
            if idle != runWhenIdle.load(ordering: .relaxed) {
                // The policy is per thread, so only this thread can change its own; the bench waits
                // for the result (and reports a failure) before it measures.
                idle.toggle()
                let applied: Int32 = bench_set_idle_priority(idle ? 1 : 0) == 0 ? (idle ? 1 : 0) : -errno
                appliedPriority.store(applied, ordering: .relaxed)
            }
            let polling = DispatchTime.now().uptimeNanoseconds - lastArrival < 20_000_000
            let ready = epoll_wait(epoll, &events, Int32(events.count), polling ? 0 : 100)
            guard ready > 0 else {
                if polling { usleep(200) }
                continue
            }
            lastArrival = DispatchTime.now().uptimeNanoseconds
            clients.withLock { clients in
                for event in events[0..<Int(ready)] {
                    let slot = Int(event.data.u64)
                    guard slot < clients.count, !clients[slot].closed else { continue }
                    // One read per ready socket: epoll is level-triggered, so what is left is reported again.
                    repeat {
                        var received: Int64 = 0
                        let got = bench_read_stamped(clients[slot].fd, buffer.baseAddress, buffer.count, &received)
                        if got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { break }
                        let now = UInt64(bench_realtime_ns())
                        if got <= 0 {
                            clients[slot].closed = true
                            if clients[slot].status == 0 { waiting.wrappingSubtract(1, ordering: .relaxed) }
                            _ = epoll_ctl(epoll, EPOLL_CTL_DEL, clients[slot].fd, nil)
                            Glibc.close(clients[slot].fd)
                            break
                        }
                        let count = Int(got)
                        var start = 0
                        if clients[slot].status == 0 {
                            let take = min(count, 12 - clients[slot].head.count)
                            clients[slot].head.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<take]))
                            start = take
                            if clients[slot].head.count == 12 {
                                let head = clients[slot].head
                                let code = head.starts(with: Array("HTTP/1.1 ".utf8)) ? Int(String(decoding: head.suffix(3), as: UTF8.self)) ?? -1 : -1
                                clients[slot].status = code
                                waiting.wrappingSubtract(1, ordering: .relaxed)
                            }
                        }
                        var matched = clients[slot].matched
                        for index in start..<count {
                            let byte = buffer[index]
                            if byte == marker[matched] {
                                matched += 1
                                if matched == marker.count {
                                    clients[slot].arrivals.append(Arrival(received: UInt64(max(0, received)), read: now))
                                    matched = 0
                                }
                            } else {
                                matched = byte == marker[0] ? 1 : 0
                            }
                        }
                        clients[slot].matched = matched
                    } while false
                }
            }
        }
    }

    deinit {
        running.store(false, ordering: .relaxed)
        Glibc.close(epoll)
    }
}

/// Several `EpollSSEClients`, each with its own reader thread, the streams split between them:
/// on two cores one reader thread always shares a core with one of the streamer's two event
/// loops, so that loop finishes its writes last; two readers spread the clients' work evenly.
final class EpollSSEClientGroup: Sendable {
    private let readers: [EpollSSEClients]

    init(readers: Int, port: Int, path: String, token: String, host: String = "127.0.0.1", source: String? = nil) {
        self.readers = (0..<max(1, readers)).map { _ in EpollSSEClients(port: port, path: path, token: token, host: host, source: source) }
    }


    var count: Int { readers.reduce(0) { $0 + $1.count } }

    func open(_ count: Int, eventsBefore: Int, atOnce: Int = 200) async throws -> (opened: Int, refused: Int) {
        var total = (opened: 0, refused: 0)
        for (index, reader) in readers.enumerated() {
            let share = count / readers.count + (index < count % readers.count ? 1 : 0)
            let result = try await reader.open(share, eventsBefore: eventsBefore, atOnce: atOnce)
            total.opened += result.opened
            total.refused += result.refused
        }
        return total
    }

    func arrivals(waitingFor events: Int, timeout: Duration, skippingClosed: Bool = false) async throws -> [(Int, [EpollSSEClients.Arrival])] {
        var all: [(Int, [EpollSSEClients.Arrival])] = []
        for reader in readers { all += try await reader.arrivals(waitingFor: events, timeout: timeout, skippingClosed: skippingClosed) }
        return all
    }

    func closeAll() { readers.forEach { $0.closeAll() } }

    var refusedStatuses: [Int: Int] { readers.reduce(into: [:]) { $0.merge($1.refusedStatuses, uniquingKeysWith: +) } }

    /// Whether the readers run only on CPU time nothing else wants (SCHED_IDLE), as clients on
    /// machines of their own would cost the servers nothing, or compete for the cores as ordinary
    /// threads. Either way each delivery's arrival is the kernel's receive timestamp, so when a
    /// reader gets to a socket does not change it; what changes is the CPU left to the servers.
    /// Returns once every reader thread runs with the new policy.
    func runWhenIdle(_ idle: Bool) async throws {
        for reader in readers { reader.runWhenIdle.store(idle, ordering: .relaxed) }
        let wanted: Int32 = idle ? 1 : 0
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            let applied = readers.map { $0.appliedPriority.load(ordering: .relaxed) }
            if let failed = applied.first(where: { $0 < 0 }) { throw ValidationError("sched_setscheduler: errno \(-failed)") }
            if applied.allSatisfy({ $0 == wanted }) { return }
            guard ContinuousClock.now < deadline else { throw ValidationError("the SSE reader threads did not change their scheduling policy") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
