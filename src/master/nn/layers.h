// Every layer of the engine, named as PyTorch users know them. One class per file in
// src/master/nn/; this header only gathers their declarations so models can include one thing.
#pragma once

#include "master/nn/activations.h"
#include "master/nn/attention.h"
#include "master/nn/batchnorm2d.h"
#include "master/nn/conv2d.h"
#include "master/nn/dropout.h"
#include "master/nn/flatten.h"
#include "master/nn/layernorm.h"
#include "master/nn/linear.h"
#include "master/nn/pooling.h"
#include "master/nn/residual.h"
#include "master/nn/sequential.h"
