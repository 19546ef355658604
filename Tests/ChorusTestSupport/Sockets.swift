import Foundation

public struct SocketError: Error, CustomStringConvertible {
    public let description: String
}

/// A plain blocking TCP socket to 127.0.0.1:`port`, for tests that write bytes as a hostile or slow
/// client would, with no client library buffering in between. The caller closes it.
public func connectedSocket(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SocketError(description: "socket() failed: errno \(errno)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw SocketError(description: "connect() to port \(port) failed: errno \(errno)")
    }
    return fd
}
