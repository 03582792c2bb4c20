"""HTTP file serving: install trees and the TFTP root over HTTP, byte ranges, sendfile."""
