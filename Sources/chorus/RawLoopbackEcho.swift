import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The physical limit of `chorus bench wire`'s throughput rows: the same echo (send N bytes, get the same N
/// back) over a plain loopback TCP socket with blocking reads and writes, no framing, no encoding, no
/// event loop. Each byte is copied by the kernel twice per direction, as on the wire.
struct RawLoopbackEcho {
    /// MB/s counted as the wire rows count them: bytes sent plus bytes received, over the wall time.
    static func measure(bytes: Int, calls: Int) throws -> Double {
        let listener = try listen()
        defer { close(listener.fd) }
        let server = Thread {
            let fd = accept(listener.fd, nil, nil)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: bytes)
            for _ in 0..<(calls + 1) {
                guard readFully(fd, &buffer), writeFully(fd, buffer) else { return }
            }
        }
        server.start()
        let fd = try connect(port: listener.port)
        defer { close(fd) }
        let out = [UInt8](repeating: 1, count: bytes)
        var back = [UInt8](repeating: 0, count: bytes)
        func echo() throws {
            guard writeFully(fd, out), readFully(fd, &back) else { throw RawLoopbackError("loopback echo failed: \(String(cString: strerror(errno)))") }
        }
        try echo()  // warm-up: the socket buffers grow to their working size
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls { try echo() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Double(2 * calls * bytes) / seconds / 1e6
    }

    /// The floor of the gateway hop: p50 round trips, µs, of a `bytes` echo over loopback TCP, direct and through a
    /// relay thread that reads each request and writes it to the echo's socket, then the answer back, all with
    /// blocking reads and writes (no framing, no event loop): the two socket crossings a hop adds and nothing else.
    static func relayHop(bytes: Int, calls: Int) throws -> (direct: Double, relayed: Double) {
        let echoListener = try listen(), relayListener = try listen()
        defer { close(echoListener.fd); close(relayListener.fd) }
        // The echo serves two connections in turn (the client's, then the relay's); the relay one.
        let echo = Thread {
            for _ in 0..<2 {
                let fd = accept(echoListener.fd, nil, nil)
                guard fd >= 0 else { return }
                var buffer = [UInt8](repeating: 0, count: bytes)
                while readFully(fd, &buffer), writeFully(fd, buffer) {}
                close(fd)
            }
        }
        let relay = Thread {
            let fd = accept(relayListener.fd, nil, nil)
            guard fd >= 0, let upstream = try? connect(port: echoListener.port) else { return }
            var buffer = [UInt8](repeating: 0, count: bytes)
            while readFully(fd, &buffer), writeFully(upstream, buffer), readFully(upstream, &buffer), writeFully(fd, buffer) {}
            close(fd)
            close(upstream)
        }
        echo.start()
        relay.start()
        func p50(port: Int) throws -> Double {
            let fd = try connect(port: port)
            defer { close(fd) }
            let out = [UInt8](repeating: 7, count: bytes)
            var back = [UInt8](repeating: 0, count: bytes)
            var latencies: [UInt64] = []
            latencies.reserveCapacity(calls)
            for call in 0..<(calls + 1000) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                guard writeFully(fd, out), readFully(fd, &back) else { throw RawLoopbackError("loopback echo failed: \(String(cString: strerror(errno)))") }
                if call >= 1000 { latencies.append(DispatchTime.now().uptimeNanoseconds - t0) }  // the first 1000 warm up
            }
            latencies.sort()
            return Double(latencies[latencies.count / 2]) / 1000
        }
        return (try p50(port: echoListener.port), try p50(port: relayListener.port))
    }

    private static func listen() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawLoopbackError("socket: \(String(cString: strerror(errno)))") }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && Glibc.listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            close(fd)
            throw RawLoopbackError("listening on loopback: \(String(cString: strerror(errno)))")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    private static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard fd >= 0, connected else { throw RawLoopbackError("connecting on loopback: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian  // checked: a port getsockname gave, or 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}

struct RawLoopbackError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func readFully(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
    buffer.withUnsafeMutableBytes { raw in transfer(raw.count) { read(fd, raw.baseAddress! + $0, raw.count - $0) } }
}

private func writeFully(_ fd: Int32, _ buffer: [UInt8]) -> Bool {
    buffer.withUnsafeBytes { raw in transfer(raw.count) { write(fd, raw.baseAddress! + $0, raw.count - $0) } }
}

/// Calls `step` with the bytes done so far until `count` are done; false when a call moves nothing.
private func transfer(_ count: Int, _ step: (Int) -> Int) -> Bool {
    var done = 0
    while done < count {
        let n = step(done)
        if n <= 0 { return false }
        done += n
    }
    return true
}
