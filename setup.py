"""Install gluon-tricks.

Pick the MXNet build with an extra: ``pip install -c constraints.txt -e '.[cpu]'`` or
``'.[cu112]'`` (V100/A100-class GPUs, CUDA 11 runtime from NVIDIA's wheels); ``[onnx]`` adds
ONNX export and onnxruntime, ``[tensorboard]`` the TensorBoard writer, ``[test]`` what the test
suite needs (both of those included). ``constraints.txt`` pins the known-good set (numpy < 1.24).
"""
from setuptools import find_packages, setup

CUDA11_RUNTIME = [
    # what mxnet-cu112 1.9.1 dlopens (ENVIRONMENT.md): CUDA 11 runtime, cuBLAS 11, cuDNN 8,
    # NCCL 2, NVRTC, cuFFT, cuRAND, cuSOLVER, NVTX
    'nvidia-cuda-runtime-cu11>=11.2,<12',
    'nvidia-cublas-cu11>=11.4,<12',
    'nvidia-cudnn-cu11>=8.5,<9',
    'nvidia-nccl-cu11>=2.8,<3',
    'nvidia-cuda-nvrtc-cu11>=11.2,<12',
    'nvidia-cufft-cu11>=10.4,<11',
    'nvidia-curand-cu11>=10.2,<11',
    'nvidia-cusolver-cu11>=11.1,<12',
    'nvidia-nvtx-cu11>=11.2,<12',
]

# ONNX export and its checks (gluon_tricks.onnx): mxnet 1.9.1's exporter imports onnx.mapping,
# which onnx 1.19 removed; onnxruntime 1.15-1.17 need numpy >= 1.24 (mxnet needs < 1.24).
# Verified together with numpy 1.23.5 and protobuf 5.29.5 (constraints.txt).
ONNX = ['onnx==1.16.2', 'onnxruntime==1.18.1', 'protobuf>=3.20.2,<6']
# --tensorboard of the training scripts (gluon_tricks.curves); mxboard is retired
TENSORBOARD = ['tensorboardX==2.6.5', 'protobuf>=3.20.2,<6']

setup(
    name='gluon-tricks',
    version='0.1.0',
    description='Bag of Tricks for Image Classification (He et al., 2018) in MXNet/Gluon',
    long_description=open('README.md').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['gluon_tricks', 'gluon_tricks.*']),
    python_requires='>=3.8',
    install_requires=[
        'numpy>=1.17,<1.24',          # mxnet 1.9.1 breaks on numpy >= 1.24
        'gluoncv==0.10.5.post0',      # reference models, VOC/ADE20K data and detectors
        'opencv-python<4.9',
        'simplejpeg>=1.6,<2',         # JPEG decoding, the same pixels as OpenCV's in half the time
        'matplotlib<3.9',
        'scipy<1.12',
        'pandas<2.1',
        'pillow<11',
        'tqdm<5',
        'scikit-learn<1.4',           # the embedded demo data (digits)
    ],
    extras_require={
        'cpu': ['mxnet==1.9.1'],
        'cu112': ['mxnet-cu112==1.9.1'] + CUDA11_RUNTIME,
        'onnx': ONNX,
        'tensorboard': TENSORBOARD,
        'test': ['pytest<9'] + ONNX + TENSORBOARD,
    },
)
