"""ament_python setup for ptz_calibration."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "ptz_calibration"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="ptz_calibration maintainers",
    maintainer_email="maintainers@ptz-calibration.org",
    description="Calibrated pan-tilt-zoom cameras for ROS 2.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "ptz_driver = ptz_calibration.nodes.ptz_driver:main",
            "ptz_geometry = ptz_calibration.nodes.ptz_geometry:main",
            "ptz_calibrator = ptz_calibration.nodes.calibrator:main",
            "ptz_stereo = ptz_calibration.nodes.ptz_stereo:main",
            "ptz_sim_demo = ptz_calibration.nodes.sim_demo:main",
            "ptz_stereo_demo = ptz_calibration.nodes.stereo_demo:main",
            "ptz-calib = ptz_calibration.cli:main",
        ],
    },
)
