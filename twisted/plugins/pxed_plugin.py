from twisted.application.service import ServiceMaker

pxed = ServiceMaker(
    "pxed", "pxed.daemon.tap", "PXE boot and install server (DHCP, TFTP, HTTP)", "pxed"
)
