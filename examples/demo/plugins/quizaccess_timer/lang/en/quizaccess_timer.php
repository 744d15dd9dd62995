<?php
$string['pluginname'] = 'Timer';
